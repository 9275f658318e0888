"""Expiry and erasure on real SQLite and a real FAISS index file: retention purges old sightings
(rows, crops, thumbnails, vectors, index entries), searches expire and renew, "found" deletes the
search's query vectors and pending requests, ended reports go after their grace period."""

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
from sighting_drafts import T0

from search_party.community import (
    accounts,
    activity,
    consent,
    notifications,
    reports,
    retention,
    standing_searches,
)
from search_party.store import storage
from search_party.store.db import open_db, utcnow
from search_party.store.vector_index import VectorIndex


def count(db, table, where="1", params=()):
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}", list(params)).fetchone()[0]


@pytest.fixture
def world(tmp_path):
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    cam = camera(db, "neighbour@example.org", place(45, 300))
    store_sightings(db, cam, [(LOST_DOG, 1), (OTHER_DOG, 1)])
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    return db, owner, accounts.get_account(db, cam.owner_id), cam, report


def test_retention_purges_sightings_older_than_their_cameras_retention(tmp_path):
    db = open_db(tmp_path / "sp.db")
    short = camera(db, "a@example.org", place(0, 200), retention_days=7, name="short")
    long = camera(db, "b@example.org", place(90, 200), retention_days=30, name="long")
    now = utcnow()
    filmed_now = now - T0  # shift the fixture times to "filmed just now"
    old = store_sightings(db, short, [(LOST_DOG, 1), (OTHER_DOG, 1)], shift=filmed_now)
    kept = store_sightings(db, long, [("182", 2)], shift=filmed_now)
    path = tmp_path / "index" / "sightings.faiss"
    index = open_index(db, tmp_path)
    assert set(old + kept) <= set(index.ids.tolist())
    assert retention.run(db, now=now + timedelta(days=6), index_path=path).sightings_purged == 0
    result = retention.run(db, now=now + timedelta(days=8), index_path=path)
    assert (result.sightings_purged, result.clips_purged, result.index_refreshed) == (2, 1, True)
    gone = ",".join(map(str, old))
    assert count(db, "sightings", f"id IN ({gone})") == 0  # rows, thumbnails and vectors
    assert count(db, "sighting_crops", f"sighting_id IN ({gone})") == 0
    assert count(db, "clips", "camera_id = ?", [short.id]) == 0
    reopened = VectorIndex.open(db, path, index.model_version, index.dim)
    assert reopened.status == "loaded" and sorted(reopened.ids.tolist()) == kept  # file in step
    assert [s.id for s in storage.list_sightings(db)] == kept


def test_an_expired_search_stops_and_its_unanswered_requests_expire(world):
    db, owner, neighbour, cam, report = world
    (request,) = consent.requests_for_owner(db, neighbour.id)
    result = retention.run(db, now=report.expires)
    assert result.expired_searches == [report.id] and result.expired_requests == 1
    assert consent.get_match(db, request.match_id).state == "expired"
    assert consent.requests_for_owner(db, neighbour.id) == []
    assert activity.for_owner(db, neighbour.id)[0].event == "expired"
    assert notifications.inbox(db, owner.id)[0].kind == "search_expired"
    store_sightings(db, cam, [(LOST_DOG, 3)], shift=timedelta(hours=3))
    assert standing_searches.rescore_new_sightings(db, now=report.expires) == []  # it stopped
    renewed = reports.renew(db, report.id, owner.id, now=report.expires)
    (run,) = standing_searches.rescore_new_sightings(db, now=report.expires)
    assert renewed.status == "active" and len(run.new_matches) == 1  # the backlog is scored


def test_found_deletes_the_query_vectors_and_pending_requests_but_keeps_shares(world, tmp_path):
    db, owner, neighbour, cam, report = world
    (shared_request,) = consent.requests_for_owner(db, neighbour.id)
    consent.share(db, shared_request.match_id, neighbour.id, now=NOW)
    store_sightings(db, cam, [(LOST_DOG, 3)], shift=timedelta(hours=3))
    standing_searches.rescore_new_sightings(db, now=NOW)
    (pending,) = consent.requests_for_owner(db, neighbour.id)
    assert count(db, "notifications", "match_id = ?", [pending.match_id]) == 1
    assert retention.mark_found(db, report.id, owner.id, now=NOW)
    assert not retention.mark_found(db, report.id, owner.id, now=NOW)  # tried: marking found twice
    photos = ",".join(map(str, report.photo_ids))
    assert count(db, "query_vectors", f"photo_id IN ({photos})") == 0
    assert count(db, "matches", "id = ?", [pending.match_id]) == 0
    assert count(db, "notifications", "match_id = ?", [pending.match_id]) == 0  # request withdrawn
    assert [s.match_id for s in consent.shared_sightings(db, report.id, owner.id)] == [shared_request.match_id]
    assert activity.for_owner(db, neighbour.id)[0].event == "ended"
    store_sightings(db, cam, [(LOST_DOG, 5)], shift=timedelta(hours=4))
    assert standing_searches.rescore_new_sightings(db, now=NOW) == []  # the search is over
    index = open_index(db, tmp_path)
    assert standing_searches.search_report(db, report.id, index, now=NOW).new_matches == []


def test_ended_reports_are_deleted_after_their_grace_period(world):
    db, owner, neighbour, cam, report = world
    retention.run(db, now=report.expires)
    kept = retention.run(db, now=report.expires + retention.ENDED_REPORT_GRACE - timedelta(hours=1))
    assert kept.lost_reports_deleted == 0
    result = retention.run(db, now=report.expires + retention.ENDED_REPORT_GRACE + timedelta(hours=1))
    assert result.lost_reports_deleted == 1
    assert count(db, "lost_reports") == count(db, "report_photos") == count(db, "query_vectors") == 0
    assert count(db, "matches") == 0
    (entry, *_) = activity.for_owner(db, neighbour.id)  # the camera owner's log outlives it
    assert entry.pet_name == "Bella"
