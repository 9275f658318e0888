"""The Frigate bridge: a Frigate NVR already tracks objects on the neighbour's cameras; this sends
the clips of its dog and cat events to Search Party, and nothing else.

- **Listens** to Frigate's ``<prefix>/events`` MQTT topic.  Frigate publishes a message of type
  ``new``, ``update`` and finally ``end`` for each tracked object, each with ``before`` and
  ``after`` states (docs.frigate.video, Integrations › MQTT).  Only ``end`` messages whose
  ``after.label`` is ``dog`` or ``cat`` and whose ``after.has_clip`` is true are acted on, and
  only for Frigate cameras mapped to a Search Party camera.
- **Forwards nothing about people**: a ``person`` event is dropped unread, and of an animal
  event only its id, camera, label and start time are kept: ``sub_label`` (a recognised face's
  name) and ``recognized_license_plate`` never reach the state file, the log or the server.
- **Fetches** the clip from Frigate's HTTP API, ``GET /api/events/{id}/clip.mp4``, which starts
  at the event's ``start_time`` (Frigate API › Media), and uploads it with that time as the
  clip's start.
- **Catches up** after a restart or a lost broker connection with ``GET /api/events?cameras=…
  &labels=dog,cat&after=…&has_clip=1&in_progress=0`` (Frigate API › Events), so events that
  ended while the bridge was away are sent too; each event is sent once (the state file, per
  camera, keyed by event id), and none while the camera is paused or opted out: those stay
  unsent and the next catch-up tries them again (Frigate keeps the clips).
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from search_party.agent.client import SentLog, ServerClient
from search_party.errors import UserError

log = logging.getLogger(__name__)

ANIMALS = ("dog", "cat")
FRIGATE_TIMEOUT_S = 60
CATCH_UP_LIMIT = 100
LONGEST_EVENT_S = 3600.0  # an event that began this long before the last catch-up is still looked for
FIRST_CATCH_UP_S = 24 * 3600.0  # how far back a bridge's very first start looks


@dataclass(frozen=True)
class AnimalEvent:
    """All the bridge keeps of a Frigate event: never its sub-label, plate or zones."""

    id: str
    camera: str
    label: str
    start_time: float

    @classmethod
    def from_frigate(cls, event: Any) -> AnimalEvent | None:
        """The animal event in one Frigate event object (an MQTT ``after`` or an /api/events
        item), or None for anything else: a person, an event without a clip, a malformed one."""
        if not isinstance(event, dict) or event.get("label") not in ANIMALS or event.get("has_clip") is not True:
            return None
        event_id, camera, start = event.get("id"), event.get("camera"), event.get("start_time")
        if not (isinstance(event_id, str) and isinstance(camera, str) and isinstance(start, (int, float))):
            return None
        if not event_id or "/" in event_id or len(event_id) > 100:
            return None
        return cls(event_id, camera, str(event["label"]), float(start))

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_time, UTC)


def ended_animal(payload: bytes | bytearray) -> AnimalEvent | None:
    """The animal event an MQTT ``frigate/events`` message ends, or None."""
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "end":
        return None
    return AnimalEvent.from_frigate(message.get("after"))


def parse_camera_map(pairs: tuple[str, ...]) -> dict[str, int]:
    """``frigate_name=ID`` pairs, as given on the command line."""
    mapping: dict[str, int] = {}
    for pair in pairs:
        name, _, number = pair.partition("=")
        if not name.strip() or not number.strip().isdigit():
            raise UserError(f"--camera-map {pair!r} must be FRIGATE_CAMERA=ID, e.g. front_door=12")
        if name.strip() in mapping:
            raise UserError(f"Frigate camera {name.strip()!r} is mapped twice")
        mapping[name.strip()] = int(number)
    if not mapping:
        raise UserError("map at least one Frigate camera: --camera-map front_door=12")
    if len(set(mapping.values())) != len(mapping):
        raise UserError("map each Search Party camera to one Frigate camera")
    return mapping


def parse_host(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--mqtt {text!r} must be HOST or HOST:PORT")
    return host, int(port)


@dataclass
class MappedCamera:
    frigate_name: str
    client: ServerClient
    state: SentLog


class FrigateBridge:
    def __init__(self, frigate_url: str, cameras: list[MappedCamera], work_dir: Path, *,
                 say: Callable[[str], None] = log.info, topic_prefix: str = "frigate") -> None:
        self.frigate_url = frigate_url.rstrip("/")
        self.cameras = {c.frigate_name: c for c in cameras}
        self.work_dir = work_dir
        self.say = say
        self.topic = f"{topic_prefix}/events"
        self.events: queue.Queue[AnimalEvent | None] = queue.Queue()
        self.sent: list[str] = []
        self.catch_ups = 0
        self._lock = threading.Lock()  # one event at a time: live messages and catch-up alike
        work_dir.mkdir(parents=True, exist_ok=True)

    # -- Frigate's HTTP API

    def _get(self, path: str) -> urllib.request.Request:
        return urllib.request.Request(self.frigate_url + path, headers={"Accept": "application/json"})

    def _fetch_clip(self, event: AnimalEvent, into: Path) -> bool:
        request = self._get(f"/api/events/{urllib.parse.quote(event.id)}/clip.mp4")
        try:
            with urllib.request.urlopen(request, timeout=FRIGATE_TIMEOUT_S) as response, into.open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError) as exc:
            self.say(f"event {event.id}: Frigate did not give its clip ({exc}); the next catch-up tries again")
            return False
        return into.stat().st_size > 0

    def _list_events(self, camera: str, after: float) -> list[AnimalEvent]:
        query = urllib.parse.urlencode({"cameras": camera, "labels": ",".join(ANIMALS), "after": f"{after:.3f}",
                                        "has_clip": 1, "in_progress": 0, "limit": CATCH_UP_LIMIT,
                                        "sort": "date_asc"})
        try:
            with urllib.request.urlopen(self._get(f"/api/events?{query}"), timeout=FRIGATE_TIMEOUT_S) as response:
                listed = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.say(f"cannot list Frigate's events for {camera} ({exc}); trying again later")
            return []
        found = [AnimalEvent.from_frigate(item) for item in listed] if isinstance(listed, list) else []
        return sorted((e for e in found if e is not None and e.camera == camera), key=lambda e: e.start_time)

    # -- sending

    def handle(self, event: AnimalEvent) -> bool:
        """Send one event's clip unless sent already; False when it must wait (camera paused,
        Frigate or the server unreachable)."""
        camera = self.cameras.get(event.camera)
        if camera is None:
            return True  # a Frigate camera the neighbour did not map: not theirs to send
        with self._lock:
            if event.id in camera.state.files:
                return True
            state = camera.client.camera_state()
            if state is None or not state.accepting:
                why = state.why_not if state is not None else "not reachable"
                self.say(f"event {event.id} ({event.label}): camera {camera.client.camera_id} is {why}; not sent")
                return False
            with tempfile.TemporaryDirectory(dir=self.work_dir) as folder:
                clip = Path(folder) / f"{event.camera}-{event.id}.mp4"
                if not self._fetch_clip(event, clip):
                    return False
                reply = camera.client.post_clip(clip, start=event.start)
            if reply.transient:
                self.say(f"event {event.id}: not sent ({reply.error}); the next catch-up tries again")
                return False
            clip_info = (reply.body.get("clips") or [{}])[0]
            outcome = "uploaded" if reply.status in (200, 201) and clip_info else "refused"
            camera.state.record(event.id, label=event.label, start=event.start.isoformat(),
                                clip_id=clip_info.get("id"), outcome=outcome,
                                message=str(clip_info.get("message") or reply.error))
            self.say(f"event {event.id} ({event.label} on {event.camera}): {outcome}"
                     + (f" as clip {clip_info.get('id')}" if outcome == "uploaded" else f": {reply.error}"))
            if outcome == "uploaded":
                self.sent.append(event.id)
            return True

    def catch_up(self) -> None:
        """Send the animal events that ended while the bridge was not listening."""
        self.catch_ups += 1
        now = time.time()
        for name, camera in self.cameras.items():
            last = camera.state.extra.get("caught_up_to")
            after = (float(last) - LONGEST_EVENT_S) if last is not None else now - FIRST_CATCH_UP_S
            waiting = False
            for event in self._list_events(name, after):
                waiting |= not self.handle(event)
            if not waiting:  # something held back is looked for again next time
                camera.state.extra["caught_up_to"] = now
                camera.state.save()

    # -- MQTT

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            self.say(f"the MQTT broker refused the connection: {reason}")
            return
        client.subscribe(self.topic, qos=1)
        self.events.put(None)  # (re)connected: catch up on what ended meanwhile

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        event = ended_animal(message.payload)  # a person, or anything but an ended animal: dropped here
        if event is not None and event.camera in self.cameras:
            self.events.put(event)

    def run(self, host: str, port: int, stop: threading.Event, *, username: str | None = None,
            password: str | None = None) -> None:
        """Listen until ``stop`` is set; the broker connection is kept up by paho (reconnects
        with its own back-off), and every (re)connection is followed by a catch-up."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"search-party-{id(self):x}")
        if username:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 60)
        client.connect_async(host, port, keepalive=30)
        client.loop_start()
        try:
            while not stop.is_set():
                try:
                    item = self.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is None:
                    self.catch_up()
                else:
                    self.handle(item)
        finally:
            client.disconnect()
            client.loop_stop()


def build_bridge(frigate_url: str, camera_map: dict[str, int], server: str, token: str, folder: Path,
                 say: Callable[[str], None] = log.info, topic_prefix: str = "frigate",
                 **client_options: Any) -> FrigateBridge:
    """A bridge whose state (per camera: events sent, catch-up time) is kept under ``folder``."""
    if not frigate_url.startswith(("http://", "https://")):
        raise UserError(f"--frigate-url {frigate_url!r} must be Frigate's address, e.g. http://frigate.local:5000")
    folder.mkdir(parents=True, exist_ok=True)
    cameras = [MappedCamera(name, ServerClient(server, camera_id, token, **client_options),
                            SentLog.load(folder / f"frigate-{camera_id}.sent.json", camera_id))
               for name, camera_id in camera_map.items()]
    return FrigateBridge(frigate_url, cameras, folder / "work", say=say, topic_prefix=topic_prefix)
