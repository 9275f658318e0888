"""The invariants of DESIGN.md, each proved on a real SQLite file, a real FAISS index, and real
vectors of real fixture dogs made by the real detector and embedder (tests/domain_world.py).

1. No person recognition: a photo without a dog is refused; a person is never embedded.
2. Consent: nothing from a camera reaches anyone but its owner until the owner shares that
   sighting; a camera that was never opted in is never asked.
3. Geofence: only opted-in cameras inside the radius, and sightings after last-seen, are scored;
   nobody but the owner learns a camera's exact place.
4. Expiry and erasure: opt-out and account deletion delete rows, vectors, thumbnails and index
   entries (expiry, renewal and "found" are proved in tests/test_retention.py).
5. Nothing lost: SQLite is the source of truth; the index is rebuilt from it with equal results.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta

import numpy as np
import pytest
from domain_world import (
    LAST_SEEN,
    LAST_SEEN_POINT,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    OTHER_DOG,
    camera,
    detector,
    dog_photos,
    image,
    models,
    open_index,
    place,
    store_sightings,
)
from PIL import Image
from sighting_drafts import embedder, mpdd_drafts

from embeddings.embedder import CROP_MARGIN, crop_box
from embeddings.images import load_rgb
from embeddings.redact import blur_beside
from search_party.community import (
    accounts,
    activity,
    cameras,
    consent,
    notifications,
    relay,
    reports,
    standing_searches,
)
from search_party.errors import Forbidden, UserError
from search_party.search import matching, scoring
from search_party.search.coarse_location import coarse_area
from search_party.search.geofence import Point, destination_point
from search_party.store.db import open_db
from search_party.store.vector_index import VectorIndex


def count(db, table, where="1", params=()):
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}", list(params)).fetchone()[0]


def report_lost(db, owner_id, **overrides):
    fields = dict(pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
                  lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW)
    fields.update(overrides)
    return reports.create_lost_report(db, owner_id, **fields, **models())[0]


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "sp.db")


# ---------------------------------------------------------------- 1. no person recognition


def test_invariant_1_no_dog_no_report_and_a_person_is_never_embedded(db):
    owner = accounts.create_user(db, "owner@example.org")
    with pytest.raises(UserError, match="no dog found in photo 1"):  # tried: a person-only photo
        report_lost(db, owner.id, photos=[image("astronaut.png")])
    with pytest.raises(UserError, match="no dog found in photo 1"):  # tried: as a found report too
        reports.create_found_report(db, owner.id, species="dog", photos=[image("astronaut.png")],
                                    lat=0, lon=0, found_at=NOW, now=NOW, **models())
    assert count(db, "query_vectors") == count(db, "report_photos") == 0
    # A real person photo beside a real dog photo, one picture: only the dog is embedded.
    person = load_rgb(image("astronaut.png"))
    dog = load_rgb(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[3])
    height = person.shape[0]
    dog = np.asarray(Image.fromarray(dog).resize((dog.shape[1] * height // dog.shape[0], height)))
    both = np.ascontiguousarray(np.concatenate([person, dog], axis=1))
    persons = detector().person_boxes(both)
    assert persons, "the detector must see the person for this test to mean anything"
    report = report_lost(db, owner.id, photos=[_png(both)])
    (photo_box,) = [tuple(r) for r in db.execute(
        "SELECT box_x1, box_y1, box_x2, box_y2 FROM report_photos WHERE lost_report_id = ?", [report.id])]
    for p in persons:  # the embedded box shares no pixel with any person box
        assert min(photo_box[2], p[2]) <= max(photo_box[0], p[0]) or \
            min(photo_box[3], p[3]) <= max(photo_box[1], p[1])
    stored = reports.query_vectors(db, report.id, embedder().version)[0]
    # The dog's crop with the person beside it blurred (the dog's own box stays sharp).
    dog_vector = embedder().predict([crop_box(blur_beside(both, persons, photo_box), photo_box,
                                            CROP_MARGIN)])[0]
    person_vector = embedder().predict([crop_box(both, persons[0], CROP_MARGIN)])[0]
    assert float(stored @ dog_vector) > 0.999  # exactly the dog crop's vector
    assert float(stored @ person_vector) < 0.9 * float(stored @ dog_vector)


def _png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


# ---------------------------------------------------------------- 2. consent


def test_invariant_2_nothing_from_a_camera_reaches_anyone_but_its_owner_until_shared(db, tmp_path):
    owner = accounts.create_user(db, "owner@example.org")
    stranger = accounts.create_user(db, "stranger@example.org")
    shelter = accounts.register_shelter(db, "desk@shelter.example", None, name="Shelter",
                                     lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon,
                                     service_radius_m=10_000)
    accounts.approve_shelter(db, shelter.user_id, accounts.create_user(db, "admin@example.org", role="admin").id)
    porch = camera(db, "neighbour@example.org", place(45, 300), name="porch")
    never = camera(db, "shy@example.org", place(225, 200), opted_in=False, name="shy")
    with pytest.raises(UserError, match="not opted in"):  # tried: volunteering from it anyway
        store_sightings(db, never, [(LOST_DOG, 3)])
    store_sightings(db, porch, [(LOST_DOG, 1), (OTHER_DOG, 1)])
    report = report_lost(db, owner.id)
    standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    (request,) = consent.requests_for_owner(db, porch.owner_id)
    others = [owner.id, stranger.id, shelter.user_id, never.owner_id]

    def nothing_reaches_others(allowed: set[int]) -> None:
        for user_id in others:
            if user_id not in allowed:
                with pytest.raises(Forbidden):
                    consent.sighting_image(db, request.match_id, user_id)
            assert consent.requests_for_owner(db, user_id, states=("asked", "shared", "declined", "expired")) == []
            assert activity.for_owner(db, user_id) == []
            for note in notifications.inbox(db, user_id):
                assert "porch" not in note.body and str(round(porch.lat, 4)) not in note.body

    nothing_reaches_others(allowed=set())
    assert consent.shared_sightings(db, report.id, owner.id) == []
    assert count(db, "matches", "camera_id = ?", [never.id]) == 0  # never asked, never scored
    assert notifications.inbox(db, never.owner_id) == []
    consent.share(db, request.match_id, porch.owner_id, now=NOW)
    nothing_reaches_others(allowed={owner.id})  # the pet owner, and only for this sighting
    (shared,) = consent.shared_sightings(db, report.id, owner.id)
    assert shared.sighting_id == request.sighting_id
    # Opting out later takes the shared sighting away from the pet owner too.
    cameras.opt_out(db, porch.id, porch.owner_id, tmp_path / "index" / "sightings.faiss")
    assert consent.shared_sightings(db, report.id, owner.id) == []


# ---------------------------------------------------------------- 3. geofence


def test_invariant_3_only_opted_in_cameras_inside_the_radius_after_last_seen_are_scored(db, tmp_path):
    owner = accounts.create_user(db, "owner@example.org")
    inside = camera(db, "in@example.org", place(10, 600), name="inside")
    ring = camera(db, "ring@example.org", place(100, 1500), name="ring")  # inside 2 km only
    far = camera(db, "far@example.org", place(200, 7000), name="far")
    before = store_sightings(db, inside, [(LOST_DOG, 6)], shift=-timedelta(hours=3))  # before last seen
    after = store_sightings(db, inside, [(LOST_DOG, 1)])
    ring_ids = store_sightings(db, ring, [(LOST_DOG, 3)])
    far_ids = store_sightings(db, far, [(LOST_DOG, 5)])
    report = report_lost(db, owner.id)
    query = reports.report_query(db, report.id, embedder().version)
    threshold = scoring.threshold_for(query.model_version)
    drafts = mpdd_drafts()
    for key in [(LOST_DOG, 6), (LOST_DOG, 3), (LOST_DOG, 5)]:  # each would match on looks alone
        assert float(query.vector @ drafts[key].vector) >= threshold
    run = standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    assert run.sightings_compared == 1  # only the inside camera's sighting after last seen
    assert [m.sighting_id for m in consent.matches_of_report(db, report.id)] == after
    assert activity.for_owner(db, ring.owner_id) == activity.for_owner(db, far.owner_id) == []
    assert before[0] not in matching.fenced_sightings(db, matching.Fence(
        LAST_SEEN_POINT, 5000, LAST_SEEN), query.model_version, "dog")
    wide = report_lost(db, owner.id, radius_m=2000, pet_name="Bella (wider)")
    standing_searches.search_report(db, wide.id, open_index(db, tmp_path), now=NOW)
    assert sorted(m.sighting_id for m in consent.matches_of_report(db, wide.id)) == sorted(after + ring_ids)
    assert not set(far_ids) & {m.sighting_id for m in consent.matches_of_report(db, wide.id)}


def test_invariant_3_a_cameras_exact_place_is_never_shown_to_others(db, tmp_path):
    porch = camera(db, "neighbour@example.org", place(45, 300), name="porch")
    store_sightings(db, porch, [(LOST_DOG, 1)])
    cell = coarse_area(porch.lat, porch.lon)
    shown_areas, shown_numbers = set(), set()
    # Six owners, one a day, search from six points around the camera; each is shared it.
    for n in range(6):
        day = NOW + timedelta(days=n)
        owner = accounts.create_user(db, f"owner{n}@example.org")
        centre = destination_point(Point(porch.lat, porch.lon), 60 * n, 250 + 100 * n)
        report = report_lost(db, owner.id, lat=centre.lat, lon=centre.lon, pet_name=f"Dog {n}",
                             photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:2]), now=day)
        standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=day)
        (request,) = consent.requests_for_owner(db, porch.owner_id)
        consent.share(db, request.match_id, porch.owner_id, now=day)
        (shared,) = consent.shared_sightings(db, report.id, owner.id)
        assert not {f.name for f in dataclasses.fields(shared)} & {"camera_id", "camera_name", "lat", "lon"}
        assert "porch" not in repr(shared) and shared.distance_m % 100 == 0
        shown_areas.add(shared.area)
        shown_numbers |= {v for v in _flatten(dataclasses.astuple(shared)) if isinstance(v, float)}
        for note in notifications.inbox(db, owner.id):
            assert "porch" not in f"{note.subject} {note.body}"
    assert shown_areas == {cell}  # the same fixed area every time, never narrower
    assert porch.lat not in shown_numbers and porch.lon not in shown_numbers


def _flatten(values):
    for v in values:
        if isinstance(v, tuple):
            yield from _flatten(v)
        else:
            yield v


# ---------------------------------------------------------------- 4. erasure


def test_invariant_4_opt_out_and_account_deletion_erase_everything_they_cover(db, tmp_path):
    owner = accounts.create_user(db, "owner@example.org")
    porch = camera(db, "neighbour@example.org", place(45, 300), name="porch")
    garden = camera(db, "gardener@example.org", place(300, 500), name="garden")
    porch_ids = store_sightings(db, porch, [(LOST_DOG, 1), (OTHER_DOG, 1)])
    garden_ids = store_sightings(db, garden, [(LOST_DOG, 3), ("182", 2)])
    report = report_lost(db, owner.id)
    index_path = tmp_path / "index" / "sightings.faiss"
    index = open_index(db, tmp_path)
    standing_searches.search_report(db, report.id, index, now=NOW)
    assert count(db, "matches", "camera_id IN (?, ?)", [porch.id, garden.id]) == 2
    conversation = relay.start_conversation(db, garden.owner_id, lost_report_id=report.id)
    relay.send_message(db, conversation.id, garden.owner_id, "Saw a dog like her")

    def gone(ids):
        listed = ",".join(map(str, ids))
        return (count(db, "sightings", f"id IN ({listed})") == 0  # rows, thumbnails, vectors
                and count(db, "sighting_crops", f"sighting_id IN ({listed})") == 0
                and count(db, "matches", f"sighting_id IN ({listed})") == 0
                and not set(ids) & set(VectorIndex.open(db, index_path, index.model_version,
                                                        index.dim).ids.tolist()))

    # Opt-out (as `search-party camera opt-out` does it): the camera's data and its requests go.
    cameras.opt_out(db, porch.id, porch.owner_id, index_path)
    assert gone(porch_ids) and notifications.inbox(db, porch.owner_id) == []
    # The camera owner deletes their account: cameras, clips, sightings, index entries, messages.
    accounts.delete_account(db, garden.owner_id, index_path=index_path)
    assert gone(garden_ids) and count(db, "cameras", "id = ?", [garden.id]) == 0
    assert count(db, "clips", "camera_id = ?", [garden.id]) == count(db, "messages") == 0
    # The pet owner deletes theirs: the report, its photos, query vectors, matches, inbox.
    accounts.delete_account(db, owner.id, index_path=index_path)
    for table in ("lost_reports", "report_photos", "query_vectors", "matches", "conversations",
                  "notifications"):
        assert count(db, table) == 0, table
    assert [r[0] for r in db.execute("SELECT email FROM users")] == ["neighbour@example.org"]


# ---------------------------------------------------------------- 5. nothing lost


def test_invariant_5_the_index_is_a_cache_rebuilt_from_sqlite_with_the_same_results(db, tmp_path):
    owner = accounts.create_user(db, "owner@example.org")
    for n, dog in enumerate([(LOST_DOG, 1), (OTHER_DOG, 1), (LOST_DOG, 3), ("182", 2)]):
        store_sightings(db, camera(db, f"cam{n}@example.org", place(90 * n, 400)), [dog])
    report = report_lost(db, owner.id)
    query = reports.report_query(db, report.id, embedder().version)
    fence = matching.Fence(LAST_SEEN_POINT, report.radius_m, LAST_SEEN)
    index = open_index(db, tmp_path)
    before = matching.find_candidates(db, index, query, fence).candidates
    index.path.write_bytes(b"SPFAISS1 torn write")  # tried: a corrupt index file
    rebuilt = open_index(db, tmp_path)
    assert rebuilt.status.startswith("rebuilt")
    assert matching.find_candidates(db, rebuilt, query, fence).candidates == before
    index.path.unlink()  # tried: no index file at all
    run = standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    assert [m.sighting_id for m in consent.matches_of_report(db, report.id)] == [c.sighting_id for c in before]
    assert len(run.new_matches) == 2
    again = open_db(tmp_path / "sp.db")  # another connection, as after a restart
    assert consent.matches_of_report(again, report.id) == consent.matches_of_report(db, report.id)
