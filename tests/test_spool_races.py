"""Nothing acknowledged is lost while the clean-ups run beside the uploads: the worker's spool
clean-up against a clip halfway through its registration, and the stale-upload sweep against an
upload that has been streaming for longer than the sweep's age.  Real threads stopped at explicit
points (events), a real SQLite file, the real spool and upload folders, real clips and the real
worker task body."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from short_clips import dog_clip

from search_party.community import accounts, cameras
from search_party.ingest import clip_task, file_leases, jobs, spool, uploads
from search_party.store import storage
from search_party.store.db import open_db

WAIT_S = 60  # only keeps a broken run from hanging; every wait below is for an event


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def opted_in_camera(db) -> int:
    owner = accounts.create_user(db, "neighbour@example.org")
    return cameras.opt_in(db, cameras.register_camera(db, owner.id, lat=51.5, lon=-0.12).id, owner.id).id


def test_the_spool_clean_up_never_removes_a_clip_being_registered(settings, tmp_path):
    db = open_db(settings.db_path)
    camera = opted_in_camera(db)
    clip_file = dog_clip(tmp_path / "porch.mp4")
    moved, go = threading.Event(), threading.Event()
    outcome: dict = {}

    def hold_inside_the_transaction() -> None:
        moved.set()  # the file is in the spool, the clip's row not yet committed
        assert go.wait(WAIT_S)

    def register() -> None:
        with open_db(settings.db_path) as own:
            try:
                outcome["submission"] = spool.register_clip(
                    settings, own, clip_file, camera, before_commit=hold_inside_the_transaction)
            except BaseException as exc:  # reported by the main thread
                outcome["error"] = exc

    registering = threading.Thread(target=register)
    registering.start()
    assert moved.wait(WAIT_S)
    # Left by earlier trouble, and the clean-up's to remove: a folder of a clip that no longer
    # exists, and a copy whose process died an hour ago.
    (settings.spool_dir / "clip-999").mkdir()
    abandoned = settings.spool_dir / "dead.part"
    abandoned.write_bytes(b"half a clip")
    an_hour_ago = time.time() - 3600
    os.utime(abandoned, (an_hour_ago, an_hour_ago))
    queue = jobs.make_queue(settings)
    during = jobs.recover(settings, db, queue)  # the worker starting while the upload commits
    go.set()
    registering.join(WAIT_S)
    assert "error" not in outcome, outcome.get("error")

    submission = outcome["submission"]
    assert submission.created  # acknowledged: the sender was told it is queued
    spooled = settings.spool_dir / submission.clip.spool_name
    assert spooled.is_file() and sha256(spooled) == sha256(clip_file)
    assert during.spool_removed == []  # it waited for the registration instead
    # A copy being made right now, of a camera file last modified an hour ago (the copy keeps the
    # source's times), is not abandoned: its maker holds its lease.
    copying = settings.spool_dir / "copying.part"
    copying.write_bytes(b"the first megabyte")
    os.utime(copying, (an_hour_ago, an_hour_ago))
    with file_leases.held(copying):
        after = jobs.recover(settings, db, queue)
    assert sorted(after.spool_removed) == ["clip-999", "dead.part"]  # the clean-up still cleans
    assert copying.is_file()
    assert spooled.is_file() and after.enqueued == [submission.clip.id]
    done = clip_task.run_clip(settings, submission.clip.id, jobs.new_claim())
    assert done is not None and done.status == "done" and done.sightings_count == 1


def test_the_stale_upload_sweep_never_removes_an_upload_still_streaming(settings, tmp_path):
    db = open_db(settings.db_path)
    camera = opted_in_camera(db)
    slow = dog_clip(tmp_path / "slow.mp4", seed=1).read_bytes()
    quick = dog_clip(tmp_path / "quick.mp4", seed=2)
    uploads_dir = settings.data_dir / "uploads"
    uploads_dir.mkdir(parents=True, exist_ok=True)
    # What a request that died an hour ago left: the sweep's to remove.
    dead = uploads_dir / "tmp-dead-request"
    dead.mkdir()
    (dead / "lost.mp4").write_bytes(b"part of a clip")
    read_end, write_end = os.pipe()
    outcome: dict = {}

    def receive() -> None:
        with open_db(settings.db_path) as own, os.fdopen(read_end, "rb", buffering=0) as stream:
            try:
                outcome["status"] = uploads.receive_clip(settings, own, camera, stream, "slow.mp4")
            except BaseException as exc:  # reported by the main thread
                outcome["error"] = exc

    streaming = threading.Thread(target=receive)
    streaming.start()
    with os.fdopen(write_end, "wb", buffering=0) as sender:
        sender.write(slow[: len(slow) // 2])
        deadline = time.monotonic() + WAIT_S
        while not any(f.stat().st_size > 0 for f in uploads_dir.glob("tmp*/slow.mp4")):
            assert time.monotonic() < deadline and streaming.is_alive(), outcome
            time.sleep(0.01)
        # The upload has been streaming for over an hour: its folder's mtime is when its file was
        # created, and writing into the file never changes it.
        (folder,) = [f.parent for f in uploads_dir.glob("tmp*/slow.mp4")]
        for stale in (folder, dead):
            os.utime(stale, (time.time() - 2 * uploads.STALE_UPLOAD_S,) * 2)
        other = uploads.receive_clip(settings, db, camera, quick.open("rb"), "quick.mp4")
        assert other.status == "queued" and not dead.exists()  # the sweep ran, and swept
        sender.write(slow[len(slow) // 2:])
    streaming.join(WAIT_S)
    assert "error" not in outcome, outcome.get("error")

    status = outcome["status"]
    assert status.status == "queued" and not status.duplicate
    clip = storage.get_clip(db, status.id)
    assert clip.sha256 == hashlib.sha256(slow).hexdigest() and clip.size_bytes == len(slow)
    assert sha256(settings.spool_dir / clip.spool_name) == clip.sha256
