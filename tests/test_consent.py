"""Consent on real SQLite, real FAISS and real fixture-dog vectors: candidate -> asked ->
shared | declined, who sees what at each step, idempotent answers, the per-camera daily quota,
and the camera owner's activity log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from domain_world import (
    LAST_SEEN,
    LAST_SEEN_POINT,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    OTHER_DOG,
    camera,
    dog_photos,
    models,
    open_index,
    place,
    store_sightings,
)

from search_party.community import accounts, activity, cameras, consent, notifications, reports, standing_searches
from search_party.errors import Forbidden, UserError
from search_party.store import storage
from search_party.store.db import open_db


@pytest.fixture
def world(tmp_path):
    """A pet owner's search for dog 172 and a neighbour's camera 300 m away that filmed it
    (sequence 1) and two other dogs."""
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    cam = camera(db, "neighbour@example.org", place(45, 300))
    store_sightings(db, cam, [(LOST_DOG, 1), (OTHER_DOG, 1), ("182", 2)])
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    run = standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    neighbour = accounts.get_account(db, cam.owner_id)
    return db, owner, neighbour, cam, report, run


def test_the_camera_owner_is_asked_about_the_lost_dog_only(world):
    db, owner, neighbour, cam, report, run = world
    (request,) = consent.requests_for_owner(db, neighbour.id)
    assert run.asked == [request.match_id] and run.sightings_compared == 3
    sighting = storage.get_sighting(db, request.sighting_id)
    # The lost dog's sighting: stored first of the three, so it holds the lowest id.
    assert sighting.id == min(s.id for s in storage.list_sightings(db, camera_ids=[cam.id]))
    assert request.pet_name == "Bella" and request.distance_m == 300
    assert request.lost_photo_ids == report.photo_ids
    # The neighbour sees the lost dog's photos beside their own crop.
    assert consent.photo_image(db, request.lost_photo_ids[0], neighbour.id)[:2] == b"\xff\xd8"
    assert consent.sighting_image(db, request.match_id, neighbour.id)[:2] == b"\xff\xd8"
    (note,) = notifications.inbox(db, neighbour.id)
    assert note.kind == "consent_request" and "Bella" in note.subject
    assert "owner@example.org" not in note.body


def test_the_pet_owner_sees_nothing_until_the_camera_owner_shares(world):
    db, owner, neighbour, cam, report, _ = world
    (request,) = consent.requests_for_owner(db, neighbour.id)
    assert consent.shared_sightings(db, report.id, owner.id) == []
    with pytest.raises(Forbidden):  # tried: the pet owner fetching the crop before a share
        consent.sighting_image(db, request.match_id, owner.id)
    assert notifications.inbox(db, owner.id) == []
    consent.share(db, request.match_id, neighbour.id, now=NOW)
    (shared,) = consent.shared_sightings(db, report.id, owner.id)
    assert shared.sighting_id == request.sighting_id and shared.distance_m % 100 == 0
    assert consent.sighting_image(db, request.match_id, owner.id)[:2] == b"\xff\xd8"
    assert {n.kind for n in notifications.inbox(db, owner.id)} == {"sighting_shared"}
    stranger = accounts.create_user(db, "stranger@example.org")
    with pytest.raises(Forbidden):  # tried: a third user reading the shared sighting
        consent.shared_sightings(db, report.id, stranger.id)
    with pytest.raises(Forbidden):
        consent.sighting_image(db, request.match_id, stranger.id)


def test_a_decline_is_never_shown_to_the_pet_owner(world):
    db, owner, neighbour, cam, report, _ = world
    (request,) = consent.requests_for_owner(db, neighbour.id)
    before = consent.progress(db, report.id, owner.id)
    consent.decline(db, request.match_id, neighbour.id, now=NOW)
    assert consent.progress(db, report.id, owner.id) == before  # a decline looks like silence
    assert consent.shared_sightings(db, report.id, owner.id) == []
    assert notifications.inbox(db, owner.id) == []
    with pytest.raises(Forbidden):
        consent.sighting_image(db, request.match_id, owner.id)
    assert [e.event for e in activity.for_owner(db, neighbour.id)][:1] == ["declined"]


def test_answering_twice_is_one_answer_and_only_the_camera_owner_answers(world):
    db, owner, neighbour, cam, report, _ = world
    (request,) = consent.requests_for_owner(db, neighbour.id)
    with pytest.raises(Forbidden):  # tried: the pet owner sharing on the neighbour's behalf
        consent.share(db, request.match_id, owner.id)
    with pytest.raises(Forbidden):  # tried: an id that does not exist (same answer as not yours)
        consent.share(db, 999, neighbour.id)
    first = consent.share(db, request.match_id, neighbour.id, now=NOW)
    again = consent.share(db, request.match_id, neighbour.id, now=NOW + timedelta(minutes=1))
    assert first == again  # tried: the share button pressed twice
    assert len(consent.shared_sightings(db, report.id, owner.id)) == 1
    assert [n.kind for n in notifications.inbox(db, owner.id)] == ["sighting_shared"]  # told once
    with pytest.raises(UserError, match="already shared"):  # tried: declining after sharing
        consent.decline(db, request.match_id, neighbour.id)


def test_requests_per_camera_per_day_are_limited_and_the_rest_wait(tmp_path):
    db = open_db(tmp_path / "sp.db")
    cam = camera(db, "neighbour@example.org", place(45, 300))
    owner = accounts.create_user(db, "owner@example.org")
    # The same dog on six separate visits (hours apart): six candidates for one camera.
    for hours in range(6):
        store_sightings(db, cam, [(LOST_DOG, 1)], shift=timedelta(hours=hours))
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    run = standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    assert len(run.new_matches) == 6
    assert len(run.asked) == consent.REQUESTS_PER_CAMERA_PER_DAY == 5
    assert consent.send_requests(db, NOW + timedelta(hours=23)) == []  # still the same day
    assert len(consent.send_requests(db, NOW + timedelta(hours=25))) == 1  # the next day
    assert [m.state for m in consent.matches_of_report(db, report.id)] == ["asked"] * 6


def test_a_paused_camera_is_not_searched(world):
    db, owner, neighbour, cam, report, _ = world
    store_sightings(db, cam, [(LOST_DOG, 3)], shift=timedelta(hours=2))
    cameras.set_paused(db, cam.id, neighbour.id, True)  # tried: pausing before the standing search ran
    (run,) = standing_searches.rescore_new_sightings(db, now=NOW)
    assert run.sightings_compared == 0 and run.new_matches == []
    assert len(consent.requests_for_owner(db, neighbour.id)) == 1  # only the earlier request


def test_the_activity_log_says_which_searches_touched_the_footage(world):
    db, owner, neighbour, cam, report, _ = world
    (request,) = consent.requests_for_owner(db, neighbour.id)
    consent.share(db, request.match_id, neighbour.id, now=NOW)
    log = activity.for_owner(db, neighbour.id)
    assert [e.event for e in log] == ["shared", "asked", "scored"]
    assert log[-1].describe() == ("The search for Bella (dog) compared 3 sightings from camera "
                                  "'porch': 1 likely match.")
    assert all("owner@example.org" not in e.describe() for e in log)
    assert activity.for_owner(db, owner.id) == []  # not the pet owner's log
    assert activity.for_owner(db, owner.id, camera_id=cam.id) == []  # tried: someone else's camera
