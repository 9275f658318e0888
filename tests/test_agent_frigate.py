"""The Frigate bridge against a real MQTT broker (Debian's mosquitto, started here on a free port)
and a stand-in for Frigate's HTTP API (a real HTTP server on 127.0.0.1 serving the documented
endpoints and a real clip), uploading to the real app.  Event messages are shaped exactly as
Frigate documents them (docs/docs/integrations/mqtt.md: ``frigate/events``, with ``before`` and
``after``; docs of /api/events and /api/events/{id}/clip.mp4)."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from web_helpers import DOG_CLIP, LiveServer, add_opted_in_camera, db_of

from search_party.agent.frigate import FrigateBridge, build_bridge, ended_animal, parse_camera_map, parse_host
from search_party.community import camera_tokens, cameras
from search_party.errors import UserError
from search_party.store import storage

MOSQUITTO = "/usr/sbin/mosquitto"

# Frigate's documented frigate/events message (docs/docs/integrations/mqtt.md), "after" shown.
DOCUMENTED_STATE = {
    "id": "1607123955.475377-mxklsc", "camera": "front_door", "frame_time": 1607123962.082975,
    "snapshot": {"frame_time": 1607123965.975463, "box": [415, 489, 528, 700], "area": 12728,
                 "region": [260, 446, 660, 846], "score": 0.77546, "attributes": []},
    "label": "person", "sub_label": ["John Smith", 0.79], "top_score": 0.958984375, "false_positive": False,
    "start_time": 1607123955.475377, "end_time": None, "score": 0.87890625, "box": [432, 496, 544, 854],
    "area": 40096, "ratio": 1.251397, "region": [218, 440, 693, 915], "current_zones": ["yard", "driveway"],
    "entered_zones": ["yard", "driveway"], "thumbnail": None, "has_snapshot": False, "has_clip": False,
    "active": True, "stationary": False, "motionless_count": 0, "position_changes": 2,
    "attributes": {"face": 0.86}, "current_attributes": [{"label": "face", "box": [442, 506, 534, 524], "score": 0.86}],
    "current_estimated_speed": 0.77, "average_estimated_speed": 14.31, "velocity_angle": 180,
    "recognized_license_plate": "ABC12345", "recognized_license_plate_score": 0.933451,
}


def frigate_message(kind: str, **after: object) -> bytes:
    """A frigate/events message of ``kind`` (new, update, end) with ``after`` changed as given."""
    before = copy.deepcopy(DOCUMENTED_STATE)
    state = {**copy.deepcopy(DOCUMENTED_STATE), **after}
    if kind == "end":
        state["end_time"] = float(state["start_time"]) + 6.0  # type: ignore[arg-type]
    return json.dumps({"type": kind, "before": before, "after": state}).encode()


def api_event(event_id: str, camera: str, label: str, start: float, *, has_clip: bool = True,
              sub_label: str | None = None) -> dict:
    """One item of GET /api/events as Frigate's EventResponse documents it."""
    return {"id": event_id, "label": label, "sub_label": sub_label, "camera": camera, "start_time": start,
            "end_time": start + 6.0, "false_positive": None, "zones": ["yard"], "thumbnail": None,
            "has_clip": has_clip, "has_snapshot": True, "retain_indefinitely": False, "plus_id": None,
            "model_hash": None, "detector_type": "cpu", "model_type": "ssd", "data": {"score": 0.8}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mosquitto(tmp_path: Path) -> Iterator[int]:
    """Debian's mosquitto on a free port of 127.0.0.1, with a generated config."""
    port = _free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "mosquitto did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class FakeFrigate:
    """Frigate's HTTP API as documented, for the endpoints the bridge uses; records requests."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/api/events":
                    labels = query.get("labels", "all").split(",")
                    found = [e for e in outer.events
                             if (query.get("labels", "all") == "all" or e["label"] in labels)
                             and query.get("cameras", "all") in ("all", e["camera"])
                             and e["start_time"] > float(query.get("after", 0))
                             and ("has_clip" not in query or e["has_clip"] == bool(int(query["has_clip"])))]
                    self._send(200, json.dumps(found).encode(), "application/json")
                elif url.path.startswith("/api/events/") and url.path.endswith("/clip.mp4"):
                    event_id = url.path.split("/")[3]
                    known = [e for e in outer.events if e["id"] == event_id and e["has_clip"]]
                    if known:
                        self._send(200, DOG_CLIP.read_bytes(), "video/mp4")
                    else:
                        self._send(404, b'{"success": false, "message": "Event not found"}', "application/json")
                else:
                    self._send(404, b"{}", "application/json")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def clips_fetched(self) -> list[str]:
        return [p.split("/")[3] for p in self.requests if p.endswith("/clip.mp4")]

    def __enter__(self) -> FakeFrigate:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def camera(app, signed_in) -> tuple[int, int, str]:
    signed_in("frigate.owner@example.org")
    owner, camera_id = add_opted_in_camera(app, "frigate.owner@example.org")
    with db_of(app) as db:
        _, secret = camera_tokens.create_token(db, camera_id, owner, "frigate")
    return owner, camera_id, secret


@contextmanager
def running(bridge: FrigateBridge, port: int) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=("127.0.0.1", port, stop))
    thread.start()
    try:
        assert _until(lambda: bridge.catch_ups >= 1, 15), "the bridge never connected to the broker"
        yield stop
    finally:
        stop.set()
        thread.join(timeout=30)


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout  # only keeps a broken run from hanging CI
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def publish(port: int, *payloads: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for payload in payloads:
        client.publish("frigate/events", payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_dog_events_are_sent_once_people_never_and_nothing_about_them(app, camera, tmp_path):
    """Published as Frigate does: a person's new/update/end (with a recognised name and a plate),
    a dog's new and update (not ended yet), the dog's end, a cat's end without a clip, a dog on a
    Frigate camera that is not mapped.  Only the dog's ended event is fetched and uploaded, with
    its start time; no name, plate or person event is kept anywhere."""
    _, camera_id, token = camera
    said: list[str] = []
    dog = {"id": "1717225200.123456-dg4x2k", "label": "dog", "sub_label": ["John Smith", 0.79],
           "start_time": 1717225200.123456, "has_clip": True}
    with mosquitto(tmp_path) as port, FakeFrigate() as frigate, LiveServer(app) as server:
        frigate.events.append(api_event(dog["id"], "front_door", "dog", dog["start_time"]))
        bridge = build_bridge(frigate.url, {"front_door": camera_id}, server.url, token, tmp_path / "state",
                              said.append)
        with running(bridge, port):
            publish(port,
                    frigate_message("new"), frigate_message("update"), frigate_message("end", has_clip=True),
                    frigate_message("new", **dog), frigate_message("update", **dog),
                    frigate_message("end", **dog),
                    frigate_message("end", id="1717225300.5-ct1abc", label="cat", has_clip=False),
                    frigate_message("end", id="1717225400.5-dg9zzz", label="dog", camera="garage",
                                    start_time=1717225400.5, has_clip=True))
            assert _until(lambda: bridge.sent, 20), said
            time.sleep(1.0)  # anything else would have arrived by now
            publish(port, frigate_message("end", **dog))  # Frigate repeats an end: still sent once
            time.sleep(1.0)
        assert bridge.sent == [dog["id"]] and server.posts() == 1
        assert frigate.clips_fetched() == [dog["id"]]  # never a person's clip, never the unmapped camera's
    with db_of(app) as db:
        (clip,) = storage.list_clips(db, camera_id=camera_id)
    assert clip.start_source == "given"
    assert clip.start_time == datetime.fromtimestamp(dog["start_time"], UTC)  # the event's own start
    kept = "\n".join([*said, *(p.read_text() for p in (tmp_path / "state").glob("*.json")), clip.filename])
    for private in ("John Smith", "ABC12345", "person"):
        assert private not in kept


def test_a_restart_catches_up_on_missed_events_and_a_paused_camera_gets_them_later(app, camera, tmp_path):
    """While the bridge is down Frigate records a dog, a cat and a person (a clip each); the
    camera is paused when the bridge comes back: nothing is sent.  Resumed, the next catch-up
    (after the broker reconnects) sends the dog and the cat, never the person, each once."""
    owner, camera_id, token = camera
    now = time.time()
    first = api_event(f"{now - 600:.6f}-aaaaaa", "front_door", "dog", now - 600)
    with mosquitto(tmp_path) as port, FakeFrigate() as frigate, LiveServer(app) as server:
        frigate.events.append(first)
        bridge = build_bridge(frigate.url, {"front_door": camera_id}, server.url, token, tmp_path / "state")
        with running(bridge, port):
            assert _until(lambda: bridge.sent == [first["id"]], 15)
        missed = [api_event(f"{now - 300:.6f}-bbbbbb", "front_door", "dog", now - 300),
                  api_event(f"{now - 200:.6f}-cccccc", "front_door", "cat", now - 200),
                  api_event(f"{now - 100:.6f}-dddddd", "front_door", "person", now - 100, sub_label="Jane Doe")]
        frigate.events += missed
        with db_of(app) as db:
            cameras.set_paused(db, camera_id, owner, True)
        said: list[str] = []
        restarted = build_bridge(frigate.url, {"front_door": camera_id}, server.url, token, tmp_path / "state",
                                 said.append)
        with running(restarted, port):
            time.sleep(1.0)
            assert restarted.sent == [] and server.posts() == 1
            assert any("is paused; not sent" in line for line in said)
            with db_of(app) as db:
                cameras.set_paused(db, camera_id, owner, False)
            restarted.events.put(None)  # as after a broker reconnect
            assert _until(lambda: len(restarted.sent) == 2, 15), said
        assert restarted.sent == [missed[0]["id"], missed[1]["id"]] and server.posts() == 3
        assert missed[2]["id"] not in frigate.clips_fetched()
        catch_up = [urllib.parse.parse_qs(urllib.parse.urlsplit(p).query) for p in frigate.requests
                    if p.startswith("/api/events?")]
        assert all(q["labels"] == ["dog,cat"] and q["has_clip"] == ["1"] and q["cameras"] == ["front_door"]
                   for q in catch_up)


def test_bad_messages_and_arguments_are_refused_or_ignored():
    """Tried: not JSON, a list, an end without "after", a person, an animal without a clip, an
    event id with a slash; bad camera maps and broker addresses."""
    for payload in (b"not json", b"[]", b'{"type": "end"}', frigate_message("end", has_clip=True),
                    frigate_message("end", label="dog", has_clip=False),
                    frigate_message("end", label="dog", has_clip=True, id="../../api/config"),
                    frigate_message("update", label="dog", has_clip=True)):
        assert ended_animal(payload) is None
    assert ended_animal(frigate_message("end", label="cat", has_clip=True)) is not None
    assert parse_camera_map(("front_door=12", "garage=13")) == {"front_door": 12, "garage": 13}
    for pairs, message in ((("front_door",), "FRIGATE_CAMERA=ID"), (("a=1", "a=2"), "mapped twice"),
                           (("a=1", "b=1"), "one Frigate camera"), ((), "at least one")):
        with pytest.raises(UserError, match=message):
            parse_camera_map(pairs)
    assert parse_host("broker.local") == ("broker.local", 1883) and parse_host("10.0.0.2:1884") == ("10.0.0.2", 1884)
    with pytest.raises(UserError, match="HOST:PORT"):
        parse_host("broker:99999")
