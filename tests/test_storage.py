"""The storage API on a real SQLite file, with sightings embedded from real fixture dogs."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sighting_drafts import T0, clip_result, mpdd_drafts

from search_party.community import accounts, cameras
from search_party.errors import NotFound, UserError
from search_party.store import storage
from search_party.store.db import open_db


def opted_in_camera(db, lat=51.5, lon=-0.12, email="neighbour@example.org"):
    owner = accounts.create_user(db, email)
    camera = cameras.register_camera(db, owner.id, lat=lat, lon=lon, name="porch")
    return cameras.opt_in(db, camera.id, owner.id)


def processing_clip(db, camera, sha="a" * 64, claim="host:1:abc"):
    clip, created = storage.create_clip(db, camera.id, sha, "porch.mp4", 1234)
    assert created
    return storage.claim_clip(db, clip.id, claim)


def two_drafts():
    drafts = mpdd_drafts()
    return [drafts[("131", 5)], drafts[("148", 3)]]


def test_a_new_camera_is_opted_out_and_takes_no_clips(db):
    owner = accounts.create_user(db, "owner@example.org")
    camera = cameras.register_camera(db, owner.id, lat=48.85, lon=2.35, retention_days=14)
    assert not camera.opted_in and camera.opted_in_at is None
    with pytest.raises(UserError, match="not opted in"):  # tried: volunteering before opting in
        storage.create_clip(db, camera.id, "b" * 64, "x.mp4", 10)
    assert storage.list_clips(db) == []
    camera = cameras.opt_in(db, camera.id, owner.id)
    assert camera.opted_in and camera.opted_in_at is not None


def test_bad_camera_input_is_refused(db):
    owner = accounts.create_user(db, "owner@example.org")
    with pytest.raises(UserError, match="latitude 91 is outside"):  # tried: latitude 91
        cameras.register_camera(db, owner.id, lat=91.0, lon=0.0)
    with pytest.raises(UserError, match="1 to 365 days, not 0"):  # tried: zero retention
        cameras.register_camera(db, owner.id, lat=0.0, lon=0.0, retention_days=0)
    with pytest.raises(NotFound):  # tried: an owner id nobody has
        cameras.register_camera(db, 999, lat=0.0, lon=0.0)
    with pytest.raises(UserError, match="paused"):  # tried: a paused camera volunteering a clip
        camera = opted_in_camera(db, email="p@example.org")
        cameras.set_paused(db, camera.id, camera.owner_id, True)
        storage.create_clip(db, camera.id, "c" * 64, "x.mp4", 10)


def test_the_same_content_is_one_clip_per_camera(db):
    camera = opted_in_camera(db)
    first, created = storage.create_clip(db, camera.id, "d" * 64, "a.mp4", 10)
    again, created_again = storage.create_clip(db, camera.id, "d" * 64, "renamed.mp4", 10)
    assert created and not created_again and again.id == first.id
    other = opted_in_camera(db, lat=51.6, email="other@example.org")
    _, created_elsewhere = storage.create_clip(db, other.id, "d" * 64, "a.mp4", 10)
    assert created_elsewhere  # another camera's copy is its own clip


def test_a_clip_is_claimed_once(db):
    clip = processing_clip(db, opted_in_camera(db))
    assert clip.status == "processing" and clip.attempts == 1
    assert storage.claim_clip(db, clip.id, "host:2:def") is None


def test_saving_a_result_stores_sightings_vectors_and_done_together(db):
    camera = opted_in_camera(db)
    clip = processing_clip(db, camera)
    drafts = two_drafts()
    ids = storage.save_clip_result(db, clip.id, clip_result(drafts), "host:1:abc")
    done = storage.get_clip(db, clip.id)
    assert done.status == "done" and done.sightings_count == 2 and done.reason is None
    assert done.stats["frames_detected"] == 6 and done.start_time == T0 and done.start_source == "given"
    stored = storage.list_sightings(db, clip_id=clip.id)
    assert [s.id for s in stored] == ids
    assert stored[0].camera_id == camera.id and stored[0].label == "dog"
    assert stored[0].model_version == drafts[0].model_version
    batches = list(storage.sighting_vectors(db, drafts[0].model_version))
    got_ids, vectors = batches[0]
    assert got_ids.tolist() == ids
    np.testing.assert_array_equal(vectors, np.vstack([d.vector for d in drafts]))  # bit-exact
    crops = storage.crop_vectors(db, ids)
    np.testing.assert_array_equal(crops[ids[1]], drafts[1].crop_vectors)
    assert storage.thumbnail(db, ids[0]) == drafts[0].thumbnail_jpeg


def test_a_crash_inside_the_save_leaves_nothing_visible(db, tmp_path):
    """Tried: the worker dying after writing the sightings but before the commit."""
    clip = processing_clip(db, opted_in_camera(db))
    seen_by_others = []

    def crash() -> None:
        reader = open_db(tmp_path / "sp.db")
        seen_by_others.append(reader.execute("SELECT count(*) FROM sightings").fetchone()[0])
        raise KeyboardInterrupt("killed mid-commit")

    with pytest.raises(KeyboardInterrupt):
        storage.save_clip_result(db, clip.id, clip_result(two_drafts()), "host:1:abc",
                                 before_commit=crash)
    assert seen_by_others == [0]  # another connection saw nothing while the rows were written
    assert storage.count_sightings(db) == 0
    assert db.execute("SELECT count(*) FROM sighting_crops").fetchone()[0] == 0
    assert storage.get_clip(db, clip.id).status == "processing"


def test_only_the_current_claim_may_store_a_result(db):
    """Tried: a worker presumed dead (its clip re-queued and claimed again) finishing late."""
    clip = processing_clip(db, opted_in_camera(db), claim="host:1:old")
    assert storage.requeue_clip(db, clip.id, "host:1:old")
    storage.claim_clip(db, clip.id, "host:2:new")
    with pytest.raises(storage.ClaimLost):
        storage.save_clip_result(db, clip.id, clip_result(two_drafts()), "host:1:old")
    assert storage.count_sightings(db) == 0
    storage.save_clip_result(db, clip.id, clip_result(two_drafts()), "host:2:new")
    assert storage.count_sightings(db) == 2 and storage.get_clip(db, clip.id).attempts == 2


def test_a_failed_clip_keeps_its_reason_and_no_sightings(db):
    clip = processing_clip(db, opted_in_camera(db))
    assert storage.fail_clip(db, clip.id, "the file is not a video", claim="host:1:abc")
    failed = storage.get_clip(db, clip.id)
    assert failed.status == "failed" and failed.reason == "the file is not a video"
    assert storage.count_sightings(db) == 0
    assert storage.retry_clip(db, clip.id)
    assert storage.get_clip(db, clip.id).status == "queued"


def test_vectors_with_nan_are_refused_and_nothing_is_stored(db):
    """Tried: a sighting whose vector holds NaN (a broken model output)."""
    clip = processing_clip(db, opted_in_camera(db))
    drafts = two_drafts()
    broken = type(drafts[1])(**{**drafts[1].__dict__, "vector": np.full_like(drafts[1].vector, np.nan)})
    with pytest.raises(ValueError, match="NaN"):
        storage.save_clip_result(db, clip.id, clip_result([drafts[0], broken]), "host:1:abc")
    assert storage.count_sightings(db) == 0


def test_opt_out_deletes_the_cameras_clips_sightings_and_vectors_at_once(db, tmp_path):
    keep = opted_in_camera(db, email="keep@example.org")
    leave = opted_in_camera(db, lat=51.51, email="leave@example.org")
    for camera, sha in ((keep, "e" * 64), (leave, "f" * 64)):
        clip = processing_clip(db, camera, sha=sha)
        storage.save_clip_result(db, clip.id, clip_result(two_drafts()), "host:1:abc")
    assert cameras.opt_out(db, leave.id, leave.owner_id, tmp_path / "sightings.faiss") == 2
    assert not cameras.get_camera(db, leave.id).opted_in
    assert {s.camera_id for s in storage.list_sightings(db)} == {keep.id}
    assert storage.list_clips(db, camera_id=leave.id) == []
    left = db.execute("SELECT count(*) FROM sighting_crops c JOIN sightings s ON s.id = c.sighting_id "
                      "WHERE s.camera_id = ?", [leave.id]).fetchone()[0]
    total = db.execute("SELECT count(*) FROM sighting_crops").fetchone()[0]
    assert left == 0 and total == sum(len(d.crop_vectors) for d in two_drafts())


def test_sightings_can_be_listed_by_camera_and_time(db):
    near = opted_in_camera(db, email="near@example.org")
    far = opted_in_camera(db, lat=52.0, email="far@example.org")
    drafts = list(mpdd_drafts().values())
    for camera, sha, part in ((near, "1" * 64, drafts[:3]), (far, "2" * 64, drafts[3:5])):
        clip = processing_clip(db, camera, sha=sha)
        storage.save_clip_result(db, clip.id, clip_result(part), "host:1:abc")
    assert len(storage.list_sightings(db, camera_ids=[near.id])) == 3
    assert storage.list_sightings(db, camera_ids=[]) == []
    since = drafts[1].first_time + timedelta(seconds=1)
    later = storage.list_sightings(db, camera_ids=[near.id], since=since)
    assert [s.first_time for s in later] == [d.first_time for d in drafts[1:3]]
