"""Several processes write to one SQLite database at once and nothing is lost (WAL mode, a busy
timeout, and ``BEGIN IMMEDIATE`` for every write: search_party.store.db).

Seven processes start together on a real database: three upload real clip files
(``spool.register_clip``: hashed, spooled and registered; two of them also send the same clip at
the same moment), two run searches (``standing_searches.search_report`` over the real FAISS index
of fixture-dog sightings), two answer consent requests (``consent.answer``).  Afterwards every
clip, every answer and every search's candidates must be there, exactly once.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from domain_world import (
    LAST_SEEN,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    camera,
    dog_photos,
    models,
    open_index,
    place,
    settings_for,
    store_sightings,
)
from sighting_drafts import SHIPPED_EMBEDDER

from search_party.community import accounts, consent, reports, standing_searches
from search_party.config import Settings
from search_party.ingest import spool
from search_party.store.db import BUSY_TIMEOUT_MS, open_db

CAMERAS = 6
SEARCHED_FIRST, SEARCHED_DURING = 6, 6  # reports searched before the processes start, and by them
UPLOADERS, CLIPS_EACH = 3, 12
CLIP = Path(__file__).resolve().parent / "fixtures" / "videos" / "dog_puppy_indoor_4s_480p.mp4"


def _clip_file(folder: Path, name: str, tag: str) -> Path:
    """The real puppy clip with a tag after its last box (players ignore it), so each upload has
    its own content hash."""
    path = folder / name
    path.write_bytes(CLIP.read_bytes() + tag.encode())
    return path


# ---------------------------------------------------------------- what each process does


def _settings(data_dir: str) -> Settings:
    return Settings(data_dir=Path(data_dir), detector="picodet_s_416", embedder=SHIPPED_EMBEDDER)


def _upload(data_dir: str, camera_id: int, worker: int, go, results) -> None:
    settings = _settings(data_dir)
    folder = Path(data_dir) / f"outbox-{worker}"
    folder.mkdir()
    files = [_clip_file(folder, f"clip-{worker}-{n}.mp4", f"{worker}:{n}") for n in range(CLIPS_EACH)]
    files.append(_clip_file(folder, "same.mp4", "sent by two uploaders at once"))
    db = open_db(settings.db_path)
    go.wait()
    ids = [spool.register_clip(settings, db, path, camera_id).clip.id for path in files]
    results.put(("upload", worker, ids))


def _search(data_dir: str, report_ids: list[int], worker: int, go, results) -> None:
    settings = _settings(data_dir)
    db = open_db(settings.db_path)
    go.wait()
    asked = []
    for n, report_id in enumerate(report_ids):
        run = standing_searches.search_report(db, report_id, open_index(db, settings.data_dir),
                                              now=NOW + timedelta(minutes=n))
        asked.append((report_id, len(run.new_matches)))
    results.put(("search", worker, asked))


def _answer(data_dir: str, answers: list[tuple[int, int, bool]], worker: int, go, results) -> None:
    db = open_db(_settings(data_dir).db_path)
    pragmas = (db.execute("PRAGMA journal_mode").fetchone()[0], db.execute("PRAGMA busy_timeout").fetchone()[0])
    go.wait()
    for match_id, owner_id, share in answers:
        consent.answer(db, match_id, owner_id, share, now=NOW + timedelta(minutes=30))
    results.put(("answer", worker, pragmas))


# ---------------------------------------------------------------- the test


@pytest.fixture
def world(tmp_path):
    """Six cameras that filmed the lost dog; twelve lost reports of it, six already searched (so
    the cameras have requests waiting), six not yet."""
    settings = settings_for(tmp_path / "data")
    with open_db(settings.db_path) as db:
        cams = [camera(db, f"neighbour{n}@example.org", place(60 * n, 300)) for n in range(CAMERAS)]
        for cam in cams:
            store_sightings(db, cam, [(LOST_DOG, 1)])
        photos = list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:1])
        report_ids = []
        for n in range(SEARCHED_FIRST + SEARCHED_DURING):
            owner = accounts.create_user(db, f"owner{n}@example.org")
            report, _ = reports.create_lost_report(
                db, owner.id, pet_name=f"Dog {n}", species="dog", photos=photos, lat=place(0, 0).lat,
                lon=place(0, 0).lon, last_seen=LAST_SEEN, now=NOW, **models())
            report_ids.append(report.id)
        for report_id in report_ids[:SEARCHED_FIRST]:
            standing_searches.search_report(db, report_id, open_index(db, settings.data_dir), now=NOW)
        asked = db.execute("SELECT m.id, c.owner_id FROM matches m JOIN cameras c ON c.id = m.camera_id "
                           "WHERE m.state = 'asked' ORDER BY m.id").fetchall()
    assert len(asked) == CAMERAS * 5  # every camera's daily quota of requests went out
    return settings, cams, report_ids, asked


def test_uploads_searches_and_answers_from_several_processes_lose_nothing(world):
    settings, cams, report_ids, asked = world
    answers = [(match_id, owner_id, n % 3 != 0) for n, (match_id, owner_id) in enumerate(asked)]
    to_search = report_ids[SEARCHED_FIRST:]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no shared SQLite handle
    go, results = context.Event(), context.Queue()
    data_dir = str(settings.data_dir)
    jobs = ([(_upload, (data_dir, cams[0].id, w)) for w in range(UPLOADERS)]
            + [(_search, (data_dir, to_search[w::2], w)) for w in range(2)]
            + [(_answer, (data_dir, answers[w::2], w)) for w in range(2)])
    processes = [context.Process(target=target, args=(*args, go, results)) for target, args in jobs]
    for process in processes:
        process.start()
    go.set()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * len(processes)

    with closing(sqlite3.connect(settings.db_path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Uploads: every distinct clip once, queued, its bytes in the spool; the clip sent by
        # three uploaders at once is one clip, and all three were told the same id.
        clips = db.execute("SELECT id, filename, status, spool_name FROM clips WHERE filename != 'clip.mp4'"
                           ).fetchall()  # 'clip.mp4': the fixture sightings' own clips
        assert len(clips) == UPLOADERS * CLIPS_EACH + 1
        assert {status for _, _, status, _ in clips} == {"queued"}
        assert all((settings.spool_dir / spool).is_file() for _, _, _, spool in clips)
        uploads = [ids for kind, _, ids in outcomes if kind == "upload"]
        assert len({ids[-1] for ids in uploads}) == 1
        assert {i for ids in uploads for i in ids} == {c[0] for c in clips}
        # Answers: each one stored as given, with the pet owner told of every share.
        states = dict(db.execute("SELECT id, state FROM matches WHERE asked_at IS NOT NULL").fetchall())
        assert {m: states[m] for m, _, _ in answers} == {m: "shared" if s else "declined" for m, _, s in answers}
        shares = db.execute("SELECT count(*) FROM notifications WHERE kind = 'sighting_shared'").fetchone()[0]
        assert shares == sum(s for _, _, s in answers)
        logged = db.execute("SELECT count(*) FROM camera_activity WHERE event IN ('shared', 'declined')").fetchone()[0]
        assert logged == len(answers)
        # Searches: every report searched during the run holds one candidate per camera and has
        # recorded how far it looked.
        top = db.execute("SELECT max(id) FROM sightings").fetchone()[0]
        for report_id in to_search:
            matched = db.execute("SELECT count(*) FROM matches WHERE lost_report_id = ?", [report_id]).fetchone()[0]
            assert matched == CAMERAS
            assert db.execute("SELECT scored_through FROM lost_reports WHERE id = ?", [report_id]).fetchone()[0] == top
    searched = sorted(r for kind, _, runs in outcomes if kind == "search" for r, _ in runs)
    assert searched == sorted(to_search)
    assert all(pragmas == ("wal", BUSY_TIMEOUT_MS) for kind, _, pragmas in outcomes if kind == "answer")
