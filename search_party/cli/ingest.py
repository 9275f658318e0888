"""`search-party ingest`, `worker`, `worker-token`, `clips` and `camera`: volunteering clips from
the shell, and the workers that process them (here, or remote: search_party.ingest.remote_worker).

`ingest` runs the worker's own code path (register, claim, process, store in one transaction)
either here with a progress bar (`--wait`, the default) or by queueing the clips for
`search-party worker` (`--queue`).
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

import click

from search_party.community import accounts, cameras
from search_party.config import Settings, load_settings
from search_party.errors import UserError
from search_party.ingest import jobs, worker_tokens
from search_party.ingest.clip_task import run_clip
from search_party.ingest.spool import register_clip
from search_party.store import storage
from search_party.store.db import open_db
from search_party.store.vector_index import VectorIndex
from search_party.vision import load_models

PROGRESS_STEPS = 1000


def _settings() -> Settings:
    settings = load_settings()
    settings.prepare_dirs()
    return settings


def _parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--start {text!r} is not an ISO 8601 time such as 2025-06-01T08:00:00+02:00") from None
    if moment.tzinfo is None:
        raise UserError(f"--start {text!r} has no UTC offset; add one, e.g. {text}+02:00 or {text}Z")
    return moment


def _run_with_progress(settings: Settings, clip: storage.Clip, name: str) -> storage.Clip | None:
    if not sys.stderr.isatty():  # a log or a pipe gets the one result line per clip only
        return run_clip(settings, clip.id, jobs.new_claim())
    with click.progressbar(length=PROGRESS_STEPS, label=name, file=sys.stderr) as bar:
        def progress(fraction: float) -> None:
            bar.update(max(0, int(fraction * PROGRESS_STEPS) - bar.pos))
        return run_clip(settings, clip.id, jobs.new_claim(), progress=progress)


def _describe(clip: storage.Clip) -> str:
    if clip.status == "done":
        return f"done, {clip.sightings_count} sighting(s)"
    if clip.status == "failed":
        return f"failed: {clip.reason}"
    return clip.status


@click.command()
@click.argument("clips", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--camera", "camera_id", type=int, required=True, help="The camera that filmed them.")
@click.option("--start", help="When the first frame was filmed, ISO 8601 with a UTC offset "
                              "(default: the clip's own creation time).")
@click.option("--wait/--queue", default=True, show_default=True,
              help="Process here with a progress bar, or queue for `search-party worker`.")
def ingest(clips: tuple[Path, ...], camera_id: int, start: str | None, wait: bool) -> None:
    """Volunteer CLIPS from an opted-in camera: each becomes one sighting per animal it shows.
    A clip already volunteered by this camera (same content) is reported, not processed again."""
    settings = _settings()
    start_time = _parse_start(start)
    failed = processed = 0
    with open_db(settings.db_path) as db:
        cameras.get_camera(db, camera_id)  # a missing camera is one error, not one per clip
        queue = None if wait else jobs.make_queue(settings)
        for path in clips:
            try:
                submission = register_clip(settings, db, path, camera_id, start_time)
            except UserError as exc:
                click.echo(f"error: {path}: {exc}", err=True)
                failed += 1
                continue
            clip = submission.clip
            if not submission.needs_processing:
                click.echo(f"{path}: already volunteered as clip {clip.id} ({_describe(clip)})")
                continue
            if queue is not None:
                queue.enqueue(clip.id)
                click.echo(f"{path}: queued as clip {clip.id}")
                continue
            finished = _run_with_progress(settings, clip, path.name)
            processed += 1
            if finished is None:
                click.echo(f"{path}: clip {clip.id} was taken by a worker; see `search-party clips`")
            elif finished.status == "failed":
                click.echo(f"error: {path}: {finished.reason}", err=True)
                failed += 1
            else:
                click.echo(f"{path}: clip {clip.id} {_describe(finished)}")
        if processed:  # the index file's upkeep, as the worker does every minute
            embedder = load_models(settings).embedder
            VectorIndex.compact(db, settings.index_path, embedder.version, embedder.dim)
    if failed:
        sys.exit(2)


@click.command()
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Clips processed at once (each worker holds its own copy of the models).")
@click.option("--processes", is_flag=True, help="Run workers as processes rather than threads.")
@click.option("--no-ingest", is_flag=True, help="On the server of remote workers: only the upkeep "
              "(recover clips of dead workers, the index file, retention, standing searches, e-mail).")
@click.option("--remote", metavar="URL", help="Be a remote worker of the server at URL: clips from its Redis "
              "(SEARCH_PARTY_REDIS_URL), fetched and posted back over HTTP; no database or spool here.")
@click.option("--worker-token", metavar="TOKEN", help="With --remote: the token `search-party worker-token add` "
              "made (default SEARCH_PARTY_WORKER_TOKEN, which keeps it out of the process list).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path),
              help="With --remote: where clips in hand are kept (default DATA_DIR/remote-work).")
@click.option("--plain-http", is_flag=True, help="With --remote: allow an http:// URL (a private network only).")
def worker(workers: int, processes: bool, no_ingest: bool, remote: str | None, worker_token: str | None,
           folder: Path | None, plain_http: bool) -> None:
    """Process queued clips until stopped (Ctrl-C finishes the clips in hand first).  On start it
    re-queues clips a killed worker left half-done."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if remote is None:
        if worker_token or folder or plain_http:
            raise UserError("--worker-token, --folder and --plain-http go with --remote URL")
        jobs.run_worker(_settings(), workers=workers, worker_type="process" if processes else "thread",
                        ingest=not no_ingest)
        return
    if processes or no_ingest:
        raise UserError("a remote worker runs --workers threads; --processes and --no-ingest are for the server")
    from search_party.ingest.remote_worker import check_remote_url, run_remote_worker

    settings = load_settings()
    server = check_remote_url(remote, plain_http=plain_http)
    token = worker_token or (settings.worker_token.get_secret_value() if settings.worker_token else "")
    run_remote_worker(settings, server, token, folder or settings.data_dir / "remote-work", workers)


@click.group("worker-token")
def worker_token_group() -> None:
    """Tokens of remote ingest workers (`search-party worker --remote`): one per worker machine."""


@worker_token_group.command("add")
@click.option("--label", default="", help="Which machine it is for, e.g. 'ingest-2'.")
def worker_token_add(label: str) -> None:
    """Make a token; it is shown once (only its hash is kept)."""
    with open_db(_settings().db_path) as db:
        token, secret = worker_tokens.create_token(db, label)
    click.echo(f"worker token {token.id} ({token.label or 'no label'}); shown once, keep it secret:")
    click.echo(secret)


@worker_token_group.command("list")
def worker_token_list() -> None:
    """Every worker token: id, label, created, last used, active or revoked."""
    with open_db(_settings().db_path) as db:
        for token in worker_tokens.list_tokens(db):
            state = "active" if token.active else f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
            used = f"{token.last_used:%Y-%m-%d %H:%M}" if token.last_used else "never"
            click.echo(f"{token.id}\t{token.label or '-'}\tcreated {token.created:%Y-%m-%d}\tused {used}\t{state}")


@worker_token_group.command("revoke")
@click.argument("token_id", type=int)
def worker_token_revoke(token_id: int) -> None:
    """Revoke a token at once: its worker's next request is refused, and a clip it holds goes
    back to the queue when its lease runs out."""
    with open_db(_settings().db_path) as db:
        token = worker_tokens.revoke_token(db, token_id)
    click.echo(f"worker token {token.id} revoked")


@click.command()
@click.option("--camera", "camera_id", type=int, help="Only this camera's clips.")
@click.option("--status", type=click.Choice(storage.CLIP_STATUSES), help="Only clips in this state.")
def clips(camera_id: int | None, status: str | None) -> None:
    """Every volunteered clip and its status: queued, processing, done (with counts) or failed
    (with the reason)."""
    with open_db(_settings().db_path) as db:
        for clip in storage.list_clips(db, camera_id=camera_id, status=status):
            click.echo(f"{clip.id}\tcamera {clip.camera_id}\t{clip.filename}\t{_describe(clip)}")


@click.group()
def camera() -> None:
    """Register cameras and give or withdraw consent, one camera at a time."""


@camera.command("add")
@click.option("--owner", "email", required=True, help="The owner's email (an account is made if new).")
@click.option("--lat", type=float, required=True)
@click.option("--lon", type=float, required=True)
@click.option("--name", default="", help="A name the owner recognises, e.g. 'porch'.")
@click.option("--retention-days", type=click.IntRange(1), help="Days its sightings are kept "
              "(default SEARCH_PARTY_RETENTION_DAYS).")
def camera_add(email: str, lat: float, lon: float, name: str, retention_days: int | None) -> None:
    """Register a camera.  It starts opted OUT: nothing from it is processed until `opt-in`."""
    settings = _settings()
    with open_db(settings.db_path) as db:
        owner = accounts.find_or_create_user(db, email)
        cam = cameras.register_camera(db, owner.id, lat=lat, lon=lon, name=name,
                                      retention_days=retention_days or settings.retention_days)
    click.echo(f"camera {cam.id} added, opted out; opt it in with `search-party camera opt-in {cam.id}`")


@camera.command("opt-in")
@click.argument("camera_id", type=int)
def camera_opt_in(camera_id: int) -> None:
    """Consent to volunteering this camera's clips for lost-dog searches (as its owner)."""
    with open_db(_settings().db_path) as db:
        cam = cameras.opt_in(db, camera_id, cameras.get_camera(db, camera_id).owner_id)
    click.echo(f"camera {cam.id} opted in at {cam.opted_in_at:%Y-%m-%d %H:%M} UTC")


@camera.command("opt-out")
@click.argument("camera_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def camera_opt_out(camera_id: int, yes: bool) -> None:
    """Withdraw consent (as its owner): this camera's clips, sightings and vectors are deleted now."""
    settings = _settings()
    with open_db(settings.db_path) as db:
        owner_id = cameras.get_camera(db, camera_id).owner_id
        if not yes:
            click.confirm(f"Delete every clip and sighting of camera {camera_id}?", abort=True)
        deleted = cameras.opt_out(db, camera_id, owner_id, settings.index_path)
    click.echo(f"camera {camera_id} opted out; {deleted} sighting(s) deleted")


@camera.command("list")
def camera_list() -> None:
    """Every camera, its consent state and retention."""
    with open_db(_settings().db_path) as db:
        for cam in cameras.list_cameras(db):
            state = "opted in" if cam.opted_in else "opted out"
            state += ", paused" if cam.paused else ""
            click.echo(f"{cam.id}\t{cam.name or '-'}\towner {cam.owner_id}\t{cam.lat:.5f},{cam.lon:.5f}\t"
                       f"{state}\tretention {cam.retention_days} d")
