"""The FAISS index as a cache of SQLite: rebuilt when missing, corrupt or stale, kept in step with
inserts and deletions, searched only within an allowed set of sightings.  Real vectors of the
fixture's MPDD dogs in a real SQLite file, a real index file in tmp_path."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from sighting_drafts import clip_result, embedder, mpdd_drafts, query_vector

from search_party.community import accounts, cameras
from search_party.search.scoring import threshold_for
from search_party.store import storage, vector_index
from search_party.store.db import open_db, write_transaction
from search_party.store.vector_index import FLAT_LIMIT, Plan, VectorIndex, file_header


def store(db, camera, drafts, sha):
    clip, _ = storage.create_clip(db, camera.id, sha, "clip.mp4", 1)
    storage.claim_clip(db, clip.id, "host:1:t")
    return storage.save_clip_result(db, clip.id, clip_result(drafts), "host:1:t")


@pytest.fixture
def world(tmp_path):
    """Two opted-in cameras; camera A saw every fixture dog's even sequences, B the odd ones."""
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    cams = [cameras.opt_in(db, cameras.register_camera(db, owner.id, lat=51.5 + i / 100, lon=0.0).id, owner.id)
            for i in range(2)]
    drafts = mpdd_drafts()
    keys = sorted(drafts)
    ids = {}
    for i, cam in enumerate(cams):
        mine = [k for k in keys if k[1] % 2 == i]
        ids.update(zip(mine, store(db, cam, [drafts[k] for k in mine], sha=str(i) * 64)))
    return db, cams, ids, tmp_path / "index" / "sightings.faiss"


def open_index(db, path, **kw):
    return VectorIndex.open(db, path, embedder().version, embedder().dim, **kw)


def queries():
    return np.vstack([query_vector("131", 5), query_vector("148", 3), query_vector("096", 1)])


def test_the_index_is_built_from_sqlite_and_loaded_from_disk_after(world):
    db, _, ids, path = world
    built = open_index(db, path)
    assert built.status == "rebuilt: missing" and path.is_file()
    assert built.count == storage.count_sightings(db) == len(ids)
    assert isinstance(built.index, faiss.IndexIDMap2)  # small: exact search
    loaded = open_index(db, path)
    assert loaded.status == "loaded"
    for a, b in zip(built.search(queries(), 5), loaded.search(queries(), 5)):
        np.testing.assert_array_equal(a, b)
    scores, found = loaded.search(query_vector("131", 5), 1)
    assert found[0, 0] == ids[("131", 5)]  # a crop finds its own sighting first
    # 0.15 above the model's match threshold (0.745 for the trained model, threshold 0.55;
    # 0.840 for the ImageNet one, threshold 0.65).
    assert scores[0, 0] > threshold_for(embedder().version) + 0.15


@pytest.mark.parametrize("damage", ["deleted", "garbage", "truncated", "one byte flipped"])
def test_a_missing_or_corrupt_file_is_rebuilt_with_the_same_results(world, damage):
    """Tried: the index file deleted, overwritten with garbage, cut short, and one byte changed."""
    db, _, _, path = world
    before = open_index(db, path).search(queries(), 5)
    data = path.read_bytes()
    if damage == "deleted":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"this is not a FAISS index, just garbage " * 50)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        flipped = bytearray(data)
        flipped[-100] ^= 0xFF
        path.write_bytes(bytes(flipped))
    rebuilt = open_index(db, path)
    assert rebuilt.status.startswith("rebuilt: " + ("missing" if damage == "deleted" else "corrupt"))
    after = rebuilt.search(queries(), 5)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], rtol=1e-6)
    assert open_index(db, path).status == "loaded"  # the rebuilt file is good again


def test_an_index_of_another_model_version_is_rebuilt(world):
    db, _, ids, path = world
    VectorIndex(path, "some-older-model", embedder().dim, faiss.index_factory(
        embedder().dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT), np.zeros(0, np.int64)).save()
    index = open_index(db, path)
    assert index.status.startswith("rebuilt: stale (model version some-older-model")
    assert index.count == len(ids)


def test_sightings_stored_or_deleted_after_the_file_was_written_are_caught_up(world):
    db, cams, ids, path = world
    open_index(db, path)
    drafts = mpdd_drafts()
    new_ids = store(db, cams[0], [drafts[("131", 5)], drafts[("148", 3)]], sha="9" * 64)
    index = open_index(db, path)
    assert index.status == "synced: +2 -0" and index.count == len(ids) + 2
    assert file_header(path)["through"] < min(new_ids)  # opening caught up in memory only
    _, found = index.search(query_vector("131", 5), 2)
    assert set(found[0]) == {ids[("131", 5)], new_ids[0]}  # the copy is found beside the original
    # Camera B's clips deleted behind the index file's back (as a crash between an opt-out's
    # commit and its index refresh would leave them), then the refresh an opt-out makes.
    gone = len(storage.list_sightings(db, camera_ids=[cams[1].id]))
    with write_transaction(db):
        db.execute("DELETE FROM clips WHERE camera_id = ?", [cams[1].id])
    index = VectorIndex.refresh(db, path)
    assert index.status == f"synced: +2 -{gone}"  # the two stored since, and the deleted
    assert open_index(db, path).status == "loaded"  # the file on disk no longer holds them
    assert set(index.ids.tolist()) == {s.id for s in storage.list_sightings(db)}
    _, found = index.search(queries(), 10)
    assert set(found[found >= 0].tolist()) <= {s.id for s in storage.list_sightings(db, camera_ids=[cams[0].id])}


def test_a_search_scores_only_the_allowed_sightings(world):
    """The geofence hands the index a set of sighting ids; nothing outside it is returned."""
    db, cams, ids, path = world
    index = open_index(db, path)
    allowed = [s.id for s in storage.list_sightings(db, camera_ids=[cams[1].id])]
    scores, found = index.search(queries(), 50, allowed_ids=allowed)
    hits = found[found >= 0]
    assert set(hits.tolist()) == set(allowed)  # every allowed sighting scored, k > len(allowed)
    assert np.isneginf(scores[found < 0]).all()
    # Dog 131 seen by camera A in sequence 5 is found by camera B in another sequence of its own.
    _, top = index.search(query_vector("131", 5), 1, allowed_ids=allowed)
    assert top[0, 0] in {v for k, v in ids.items() if k[0] == "131"}
    empty_scores, empty_ids = index.search(queries(), 3, allowed_ids=[])
    assert (empty_ids == -1).all() and np.isneginf(empty_scores).all()


def test_a_large_index_is_compressed_and_still_honours_the_allowed_set(world):
    """Above the flat limit the index is SQ8 (forced here with a tiny limit on real vectors)."""
    db, cams, ids, path = world
    assert Plan.for_size(FLAT_LIMIT).kind == "flat" and Plan.for_size(FLAT_LIMIT + 1).kind == "sq8"
    index = open_index(db, path, flat_limit=10)
    assert isinstance(faiss.downcast_index(index.index.index), faiss.IndexScalarQuantizer)
    assert index.count == len(ids)
    allowed = [s.id for s in storage.list_sightings(db, camera_ids=[cams[0].id])]
    scores, found = index.search(queries(), 50, allowed_ids=allowed)
    assert set(found[found >= 0].tolist()) == set(allowed)
    # 8 bits per dimension: scores stay within a hair of the exact cosine.
    exact = open_index(db, path.with_name("exact.faiss"))
    exact_scores, exact_found = exact.search(queries(), 50, allowed_ids=allowed)
    for row in range(len(found)):
        approx = dict(zip(found[row].tolist(), scores[row].tolist()))
        for sid, score in zip(exact_found[row].tolist(), exact_scores[row].tolist()):
            if sid >= 0:
                assert abs(approx[sid] - score) < 0.02
    reloaded = open_index(db, path, flat_limit=10)
    assert reloaded.status == "loaded" and reloaded.count == len(ids)
    assert open_index(db, path).status.startswith("rebuilt: stale (sq8 index")  # limit raised back


# ---------------------------------------------------------------- the index a running server holds


def live_ids(db, camera_ids=None):
    return {s.id for s in storage.list_sightings(db, camera_ids=camera_ids)}


def held(db, path):
    return VectorIndex.for_process(db, path, embedder().version, embedder().dim)


def test_a_running_server_maps_the_file_once_then_keeps_up_from_sqlite_alone(world):
    db, cams, _, path = world
    first = held(db, path)
    assert first.status == "rebuilt: missing" and first.mapped
    # Memory-mapped: the vectors are the file's pages (FAISS IO_FLAG_MMAP_IFC), not a copy.
    assert not faiss.downcast_index(first.index.index).codes.is_owned
    faiss_index, stamp = first.index, path.stat().st_mtime_ns
    drafts = mpdd_drafts()
    new_ids = store(db, cams[0], [drafts[("131", 5)], drafts[("148", 3)]], sha="9" * 64)
    gone = live_ids(db, [cams[1].id])
    with write_transaction(db):
        db.execute("DELETE FROM clips WHERE camera_id = ?", [cams[1].id])  # cascades to sightings

    again = held(db, path)
    assert again is first and again.index is faiss_index  # the same mapped index: no reload
    assert again.status == f"synced: +2 -{len(gone)}" and path.stat().st_mtime_ns == stamp
    assert set(again.ids.tolist()) == live_ids(db) and again.count == len(live_ids(db))
    # The same answers as an index built from SQLite now, with and without an allowed set.
    fresh = open_index(db, path.with_name("fresh.faiss"))
    assert fresh.status == "rebuilt: missing"
    allowed = sorted(live_ids(db) | gone)  # deleted ids asked for are still never returned
    for args in ((queries(), 10), (queries(), 10, allowed)):
        got, want = again.search(*args), fresh.search(*args)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    _, found = again.search(query_vector("131", 5), 1)
    assert found[0, 0] == new_ids[0]  # its original was camera B's: the copy stored since is found

    # An erasure rewrites the file at once; the server maps the new one on a background thread
    # (its searches go on meanwhile) and swaps it in at the sync after.
    assert VectorIndex.refresh(db, path).status == f"synced: +2 -{len(gone)}"
    assert held(db, path).index is faiss_index and first.newer_file_ready(timeout=60)
    np.testing.assert_array_equal(first.search(queries(), 10)[1], fresh.search(queries(), 10)[1])
    mapped_again = held(db, path)
    assert mapped_again is first and mapped_again.index is not faiss_index
    assert len(mapped_again.removed) == 0 and mapped_again.delta_ids.size == 0
    assert set(mapped_again.ids.tolist()) == live_ids(db)


def test_compact_rewrites_the_file_only_once_it_lags_enough(world, monkeypatch):
    db, cams, _, path = world
    embed = embedder()
    held(db, path)
    drafts = mpdd_drafts()
    store(db, cams[0], [drafts[("131", 5)]], sha="8" * 64)
    assert VectorIndex.compact(db, path, embed.version, embed.dim) is None  # 1 change: not yet
    monkeypatch.setattr(vector_index, "COMPACT_AT", 1)
    compacted = VectorIndex.compact(db, path, embed.version, embed.dim)
    assert compacted is not None and compacted.status == "synced: +1 -0"
    header = file_header(path)
    assert header["count"] == len(live_ids(db)) and header["through"] == max(live_ids(db))
    assert VectorIndex.compact(db, path, embed.version, embed.dim) is None  # current now
    assert open_index(db, path).status == "loaded"


def test_an_index_behind_a_pruned_deletion_log_reconciles_and_a_restored_database_rebuilds(world, tmp_path):
    db, cams, _, path = world
    embed = embedder()
    # An index that then does not sync for more than a week (read whole: it keeps to itself).
    behind = VectorIndex.open(db, path, embed.version, embed.dim, mapped=False)
    gone = live_ids(db, [cams[1].id])
    with write_transaction(db):
        db.execute("DELETE FROM clips WHERE camera_id = ?", [cams[1].id])
        db.execute("UPDATE sighting_deletions SET deleted = deleted - ?", [vector_index.DELETION_LOG_DAYS + 1])
    # The worker's upkeep prunes the log, and rewrites the file, which no longer reaches back.
    assert VectorIndex.compact(db, path, embed.version, embed.dim).status == f"synced: +0 -{len(gone)}"
    assert db.execute("SELECT count(*) FROM sighting_deletions").fetchone()[0] == 0
    assert file_header(path)["count"] == len(live_ids(db))
    behind.sync(db)
    assert behind.status == f"synced: +0 -{len(gone)}" and set(behind.ids.tolist()) == live_ids(db)
    # A database older than the index (a backup restored under a running server): rebuilt.
    older = open_db(tmp_path / "older.db")
    behind.sync(older)
    assert behind.status == "rebuilt: stale (the database is older than the index)" and behind.count == 0
