"""The RTSP camera agent against a real RTSP camera: GStreamer's RTSP server (tests/rtsp_camera.py,
run by the system Python) streams a clip composed from a real MPDD dog over a real CCTV frame,
a main stream and a low-resolution sub-stream, live; the agent uploads to the real app on
127.0.0.1.  The camera drops and comes back; the camera is paused; the agent restarts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clipmaker import DogWalk, compose, fit, frame_times, mpdd_crops, video_frame, write_clip
from web_helpers import DOG_CLIP, ROOT, LiveServer, add_opted_in_camera, db_of, process_clip_now

from search_party.agent.client import SentLog, ServerClient
from search_party.agent.rtsp import CameraAgent, CameraConfig, Spool, build_agents, clip_name, load_config
from search_party.community import camera_tokens, cameras
from search_party.errors import UserError
from search_party.store import storage

SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's GObject bindings (python3-gi) live
DOG_ENTERS, DOG_LEAVES, SECONDS, FPS = 3.0, 7.0, 12.0, 10


@pytest.fixture(scope="module")
def streams(tmp_path_factory, fixtures: Path) -> dict[str, Path]:
    """12 s of a still CCTV scene; MPDD dog 131 crosses it from 3 s to 7 s.  Main stream 640×360
    and sub-stream 320×180, H.264 without B-frames, a key frame every second, as cameras send."""
    folder = tmp_path_factory.mktemp("camera")
    scene = video_frame(fixtures / "videos" / "vtest_pedestrians_15s.mp4")
    crops = list(mpdd_crops(fixtures / "reid" / "mpdd", "131", sequence=5).values())
    made = {}
    for name, (width, height) in (("main", (640, 360)), ("sub", (320, 180))):
        walk = DogWalk(crops, DOG_ENTERS, DOG_LEAVES, height=round(height * 0.4), y=0.95)
        frames = compose(fit(scene, width, height), [walk], frame_times(SECONDS, FPS))
        made[name] = write_clip(folder / f"{name}.mp4", frames, fps=FPS,
                                options={"bf": "0", "g": str(FPS), "keyint_min": str(FPS), "sc_threshold": "0"})
    return made


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def rtsp_camera(port: int, streams: dict[str, Path]) -> Iterator[float]:
    """The RTSP server on ``port``; yields the time it began listening (each session plays from
    the start of its file)."""
    proc = subprocess.Popen([SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_camera.py"), str(port),
                             *(f"/{name}={path}" for name, path in streams.items())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
        yield time.time()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def camera(app, signed_in) -> tuple[int, int, str]:
    """(owner id, camera id, upload token) of an opted-in camera."""
    signed_in("rtsp.owner@example.org")
    owner, camera_id = add_opted_in_camera(app, "rtsp.owner@example.org")
    with db_of(app) as db:
        _, secret = camera_tokens.create_token(db, camera_id, owner, "rtsp")
    return owner, camera_id, secret


def _agent(server_url: str, camera_id: int, token: str, port: int, folder: Path,
           said: list[str]) -> CameraAgent:
    config = CameraConfig(url=f"rtsp://127.0.0.1:{port}/main", motion_url=f"rtsp://127.0.0.1:{port}/sub",
                          camera_id=camera_id, token=token, pre_roll=1.0, post_roll=1.5, max_clip=20)
    client = ServerClient(server_url, camera_id, token, backoff_base_s=0.1)
    return CameraAgent(config, client, folder / "spool", SentLog.load(folder / "sent.json", camera_id),
                       threading.Event(), said.append, state_every_s=0.5)


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout  # only keeps a broken run from hanging CI
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_a_motion_clip_is_cut_from_the_live_stream_sent_once_and_the_dog_found(
        app, settings, camera, streams, tmp_path):
    """The camera drops 1.5 s in (before anything moves) and comes back 2 s later; the agent
    reconnects, and of the replayed stream sends one clip: from about a second before the dog
    arrives to after it leaves, with the time its first frame arrived; the real pipeline finds
    the dog in it."""
    _, camera_id, token = camera
    port = _free_port()
    said: list[str] = []
    with LiveServer(app) as server:
        agent = _agent(server.url, camera_id, token, port, tmp_path, said)
        runner = threading.Thread(target=agent.run)
        with rtsp_camera(port, streams):
            runner.start()
            time.sleep(1.5)
        time.sleep(2.0)  # the camera is gone: the agent retries with back-off
        with rtsp_camera(port, streams):
            assert _until(lambda: agent.uploaded, SECONDS + 15), said
            time.sleep(1.0)
        agent.stop.set()
        runner.join(timeout=30)
        assert agent.reconnects >= 1 and any("dropped" in line for line in said), said
        assert len(agent.uploaded) == 1 and server.posts() == 1, said
    with db_of(app) as db:
        (clip,) = storage.list_clips(db, camera_id=camera_id)
    assert clip.start_source == "given"
    # The clip starts at a key frame at most pre-roll + a GOP before the dog, after the agent
    # reconnected, and is stamped with the wall-clock time that frame arrived.
    played = max(t for t in agent.sessions if t <= clip.start_time.timestamp() + 0.5)
    assert played - 0.5 <= clip.start_time.timestamp() <= played + DOG_ENTERS
    assert list((tmp_path / "spool").iterdir()) == []  # sent, so deleted from the neighbour's disk
    done = process_clip_now(settings, clip.id)
    assert done.status == "done" and done.sightings_count == 1, done.reason
    with db_of(app) as db:
        (sighting,) = storage.list_sightings(db, clip_id=clip.id)
    assert sighting.label == "dog"
    # pre-roll (1 s) + a GOP (1 s) + FFmpeg's read-ahead when a session opens (up to 1 s) + a frame
    assert clip.start_time <= sighting.first_time <= clip.start_time + timedelta(seconds=1.0 + 1.0 + 1.0 + 0.5)
    assert sighting.last_time.timestamp() <= played + DOG_LEAVES + 1.0


def test_nothing_is_recorded_or_sent_while_the_camera_is_paused(app, camera, streams, tmp_path):
    owner, camera_id, token = camera
    with db_of(app) as db:
        cameras.set_paused(db, camera_id, owner, True)
    port = _free_port()
    said: list[str] = []
    with LiveServer(app) as server, rtsp_camera(port, streams):
        agent = _agent(server.url, camera_id, token, port, tmp_path, said)
        runner = threading.Thread(target=agent.run)
        runner.start()
        time.sleep(DOG_LEAVES + 1.5)  # the dog crossed the live stream meanwhile
        agent.stop.set()
        runner.join(timeout=30)
        assert server.posts() == 0 and list((tmp_path / "spool").iterdir()) == []
    assert f"camera {camera_id}: paused; recording and sending nothing" in said


def test_a_restart_sends_nothing_twice_and_the_spool_stays_bounded(app, camera, tmp_path):
    """Tried: a clip the agent sent but whose deletion a crash lost, a clip left half-written,
    and more waiting clips than the spool's limit allows."""
    _, camera_id, token = camera
    start = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    spool = tmp_path / "spool"
    spool.mkdir()
    first = spool / clip_name(camera_id, start)
    shutil.copy(DOG_CLIP, first)
    (spool / (clip_name(camera_id, start + timedelta(minutes=1)) + ".part")).write_bytes(b"cut short")
    with LiveServer(app) as server:
        agent = _agent(server.url, camera_id, token, 1, tmp_path, [])
        assert not list(spool.glob("*.part"))  # dropped when the agent started
        agent.upload_ready()
        assert agent.uploaded == [first.name] and server.posts() == 1
        shutil.copy(DOG_CLIP, first)  # as if the agent died before deleting it
        again = _agent(server.url, camera_id, token, 1, tmp_path, [])
        again.upload_ready()
        assert again.uploaded == [] and server.posts() == 1 and not first.exists()
    with db_of(app) as db:
        (clip,) = storage.list_clips(db, camera_id=camera_id)
    assert (clip.start_time, clip.start_source) == (start, "given")
    size = DOG_CLIP.stat().st_size
    bounded = Spool(tmp_path / "bounded", max_bytes=2 * size + 10)
    names = [clip_name(camera_id, start + timedelta(minutes=m)) for m in range(4)]
    for name in names:
        shutil.copy(DOG_CLIP, bounded.folder / name)
    assert bounded.bound() == names[:2] and [p.name for p in bounded.ready()] == names[2:]


def test_the_camera_list_file_and_bad_settings(tmp_path):
    """Tried: a two-camera TOML list, an http:// camera address (with a password, which is not
    repeated), an unknown key, a missing camera id, a cap of 2 s, the same camera twice."""
    listed = tmp_path / "cameras.toml"
    listed.write_text('server = "https://sp.example.org"\n'
                      '[[cameras]]\nurl = "rtsp://u:secret@192.0.2.10/main"\nmotion_url = "rtsp://192.0.2.10/sub"\n'
                      'camera = 3\ntoken = "spcam_a"\n'
                      '[[cameras]]\nurl = "rtsp://192.0.2.11/stream1"\ncamera = 4\npre_roll = 5\n')
    server, configs = load_config(listed, token="spcam_env")
    assert server == "https://sp.example.org"
    assert [(c.camera_id, c.token, c.motion_url, c.pre_roll) for c in configs] == [
        (3, "spcam_a", "rtsp://192.0.2.10/sub", 3.0), (4, "spcam_env", None, 5.0)]
    for text, message in (('[[cameras]]\nurl = "http://192.0.2.10/x"\ncamera = 1\n', "not an rtsp:// address"),
                          ('[[cameras]]\nurl = "rtsp://192.0.2.10/x"\ncamera = 1\nfps = 5\n', "not fps"),
                          ('[[cameras]]\nurl = "rtsp://192.0.2.10/x"\n', "needs url and camera"),
                          ('[[cameras]]\nurl = "rtsp://192.0.2.10/x"\ncamera = 1\nmax_clip = 2\n', "capped")):
        listed.write_text(text)
        with pytest.raises(UserError, match=message):
            load_config(listed, token="spcam_x")
    with pytest.raises(UserError, match=r"u:\*\*\*@") as caught:
        CameraConfig(url="http://u:secret@192.0.2.10/x", camera_id=1, token="t")
    assert "secret" not in str(caught.value)  # a camera's password never reaches a message or log
    twice = [CameraConfig(url="rtsp://192.0.2.10/x", camera_id=1, token="t")] * 2
    with pytest.raises(UserError, match="listed once"):
        build_agents(twice, "https://sp.example.org", tmp_path / "agents", threading.Event())
