"""The RTSP camera agent: watches an IP camera's live stream on the neighbour's machine and sends
only the moments something moved, each once, with the time it was filmed.

Per camera, three threads (``CameraAgent``):
- **main stream reader**: keeps the last few seconds of the camera's main (full-resolution)
  stream as compressed packets, from a key frame on; while motion lasts, the packets go into a
  clip file as they are (remuxed into MP4, never re-encoded) from ``pre_roll`` seconds before the
  motion to ``post_roll`` after it, at most ``max_clip`` seconds a clip (a longer event continues
  in the next clip, from the next key frame).  The clip's start is the wall-clock time its first
  frame arrived, written into the MP4 and sent as the clip's start.
- **motion reader**: decodes the low-resolution sub-stream when the camera has one (as Frigate
  does: motion on the cheap stream, clips from the main one), else the main stream, and runs
  search_party.motion's test on a few frames a second.
- **uploader**: sends finished clips oldest first, after asking the server that the camera is
  still opted in and not paused (nothing is recorded either while it is not), records each in
  the state file, then deletes it.  A restart sends nothing twice (the state file; the server
  dedupes by content too) and throws away a clip a crash left half-written.

A dropped camera is reconnected with exponential back-off (1 s doubling to a minute).  The
spool folder is bounded (``max_spool_mb``): the oldest waiting clips are dropped first, with a
line in the log, so a long outage of the server cannot fill the neighbour's disk.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av

from search_party.agent.client import SentLog, ServerClient
from search_party.errors import UserError
from search_party.motion import MotionDetector, small_grey

log = logging.getLogger(__name__)

PART = ".part"
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 60.0
MOTION_FPS = 3.0
MOTION_WIDTH = 160
MOTION_WARMUP_S = 1.0  # the first frames after (re)connecting build the background
STATE_CHECK_S = 30.0  # how often a recorder asks the server whether the camera still takes clips
_NAME = re.compile(r"^cam(?P<camera>\d+)-(?P<start>\d{8}T\d{6}\.\d{3})Z\.mp4$")


@dataclass
class CameraConfig:
    """One camera: where its streams are, which Search Party camera it is, how clips are cut."""

    url: str
    camera_id: int
    token: str
    motion_url: str | None = None
    pre_roll: float = 3.0
    post_roll: float = 5.0
    max_clip: float = 60.0
    motion_threshold: float = 0.002  # fraction of the small grey picture that must change
    max_spool_mb: float = 500.0

    def __post_init__(self) -> None:
        for url in (self.url, self.motion_url):
            if url is not None and not url.startswith(("rtsp://", "rtsps://")):
                raise UserError(f"{_redacted(url)!r} is not an rtsp:// address")
        if not 0 <= self.pre_roll <= 30 or not 0 <= self.post_roll <= 60:
            raise UserError("pre-roll must be 0 to 30 s and post-roll 0 to 60 s")
        if not 5 <= self.max_clip <= 600:
            raise UserError("a clip's length must be capped at 5 to 600 s")
        if not 0 < self.motion_threshold < 1:
            raise UserError("the motion threshold is a fraction between 0 and 1")
        if self.max_spool_mb < 10:
            raise UserError("give the spool folder at least 10 MB")


def _redacted(url: str) -> str:
    """An RTSP address without its password, for messages and logs."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def load_config(path: Path, *, token: str | None = None) -> tuple[str | None, list[CameraConfig]]:
    """The server address and cameras of a TOML file::

        server = "https://search-party.example.org"
        [[cameras]]
        url = "rtsp://user:password@192.168.1.20:554/h264Preview_01_main"
        motion_url = "rtsp://user:password@192.168.1.20:554/h264Preview_01_sub"
        camera = 12
        token = "spcam_..."       # or leave out and set SEARCH_PARTY_AGENT_TOKEN
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read the camera list {path}: {exc}") from None
    cameras = data.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        raise UserError(f"{path} lists no [[cameras]]")
    keys = {f for f in CameraConfig.__dataclass_fields__ if f not in ("camera_id", "token")}
    configs = []
    for n, entry in enumerate(cameras, 1):
        unknown = set(entry) - keys - {"camera", "token"}
        if unknown or "url" not in entry or "camera" not in entry:
            raise UserError(f"{path}: camera {n} needs url and camera (and may have {', '.join(sorted(keys))}); "
                            f"not {', '.join(sorted(unknown)) or 'missing fields'}")
        try:
            configs.append(CameraConfig(camera_id=int(entry["camera"]), token=str(entry.get("token") or token or ""),
                                        **{k: v for k, v in entry.items() if k in keys}))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path}: camera {n}: {exc}") from None
    server = data.get("server")
    return (str(server) if server else None), configs


# ---------------------------------------------------------------- the spool of finished clips


def clip_name(camera_id: int, start: datetime) -> str:
    return f"cam{camera_id}-{start.astimezone(UTC):%Y%m%dT%H%M%S.%f}"[:-3] + "Z.mp4"


def clip_start(name: str) -> datetime | None:
    m = _NAME.match(name)
    return datetime.strptime(m["start"], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC) if m else None


@dataclass
class Spool:
    """A camera's folder of finished clips waiting to be sent, bounded in size."""

    folder: Path
    max_bytes: int

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for part in self.folder.glob(f"*{PART}"):  # a clip a crash left half-written
            log.info("%s: dropping a clip left half-written", part.name)
            part.unlink(missing_ok=True)

    def ready(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("cam*.mp4") if clip_start(p.name) is not None)

    def bound(self) -> list[str]:
        """Drop the oldest waiting clips until the folder fits its limit; the names dropped."""
        dropped = []
        clips = self.ready()
        total = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        while clips and total > self.max_bytes:
            oldest = clips.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            dropped.append(oldest.name)
            log.warning("spool over %d MB: dropped the oldest waiting clip %s", self.max_bytes >> 20, oldest.name)
        return dropped


class ClipWriter:
    """Packets of the main stream into an MP4, as they are (no re-encoding)."""

    def __init__(self, spool: Spool, camera_id: int, template: av.VideoStream, start: datetime) -> None:
        self.final = spool.folder / clip_name(camera_id, start)
        self.part = self.final.with_name(self.final.name + PART)
        self.output = av.open(str(self.part), "w", format="mp4")
        self.output.metadata["creation_time"] = start.astimezone(UTC).isoformat().replace("+00:00", "Z")
        self.stream = self.output.add_stream_from_template(template)
        self.start = start
        self.first_dts: int | None = None
        self.last_dts: int | None = None
        self.last_pts: int | None = None

    def write(self, packet: av.Packet) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        dts = packet.dts if packet.dts is not None else pts
        if pts is None or dts is None:
            return
        if self.first_dts is None:
            self.first_dts = dts
        dts -= self.first_dts
        pts -= self.first_dts
        if self.last_dts is not None and dts <= self.last_dts:  # the muxer needs rising times
            return
        packet.pts, packet.dts = pts, dts
        packet.stream = self.stream
        self.output.mux(packet)
        self.last_dts, self.last_pts = dts, packet.pts

    def close(self) -> Path | None:
        """The finished clip, or None when it got no frames."""
        wrote = self.last_dts is not None
        self.output.close()
        if not wrote:
            self.part.unlink(missing_ok=True)
            return None
        self.part.rename(self.final)
        return self.final


# ---------------------------------------------------------------- one camera


@dataclass
class Event:
    """Motion as the motion reader saw it, in wall-clock seconds (time.time())."""

    last_motion: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, when: float) -> None:
        with self.lock:
            self.last_motion = max(self.last_motion, when)

    def until(self, post_roll: float) -> float:
        with self.lock:
            return self.last_motion + post_roll if self.last_motion else 0.0


def _open(url: str) -> av.container.InputContainer:
    # TCP: no lost packets on a busy Wi-Fi; a short look-ahead: the SDP already describes the stream.
    return av.open(url, options={"rtsp_transport": "tcp", "analyzeduration": "1000000"},
                   timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))


class StreamClock:
    """When a stream's frames were filmed, in wall-clock seconds.  A frame cannot arrive before it
    was filmed, and FFmpeg hands over the first seconds of a session at once (it reads ahead to
    learn the stream), so the best estimate of the offset between a frame's timestamp and the
    wall clock is the smallest ``arrival - timestamp`` seen so far."""

    def __init__(self) -> None:
        self.offset = math.inf

    def filmed(self, seconds: float, arrival: float) -> float:
        self.offset = min(self.offset, arrival - seconds)
        return seconds + self.offset


def access_units(packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
    """The RTSP demuxer's packets joined into one packet per frame: a key frame often arrives as
    several NAL units with one timestamp (parameter sets, slices), and a clip needs them whole."""
    group: list[av.Packet] = []

    def joined() -> av.Packet:
        if len(group) == 1:
            return group[0]
        timed = next(p for p in group if p.pts is not None)
        merged = av.Packet(b"".join(bytes(p) for p in group))
        merged.pts, merged.dts, merged.time_base = timed.pts, timed.dts, timed.time_base
        merged.is_keyframe = any(p.is_keyframe for p in group)
        return merged

    for packet in packets:
        if packet.size == 0:
            continue
        if group and packet.pts is not None and any(p.pts is not None and p.pts != packet.pts for p in group):
            yield joined()
            group = []
        group.append(packet)
    if group and any(p.pts is not None for p in group):
        yield joined()


class MotionWatch:
    """search_party.motion's test on a few decoded frames a second of one stream session."""

    def __init__(self, threshold: float) -> None:
        self.detector = MotionDetector(threshold)
        self.clock = StreamClock()
        self.began: float | None = None
        self.next_sample = 0.0
        self.seen_key = False

    def moved(self, frame: av.VideoFrame) -> float | None:
        """The wall-clock time the frame was filmed if it shows motion, else None."""
        # A stream joined mid-way decodes to grey or smeared pictures until its first key frame:
        # those must not become the background.
        if frame.is_corrupt or frame.pts is None or frame.time_base is None \
                or not (self.seen_key or frame.key_frame):
            return None
        self.seen_key = True
        seconds = float(frame.pts * frame.time_base)
        filmed = self.clock.filmed(seconds, time.time())
        if seconds < self.next_sample:
            return None
        self.next_sample = seconds + 1.0 / MOTION_FPS
        if self.began is None:
            self.began = seconds
        moved = self.detector.update(small_grey(frame, MOTION_WIDTH))
        return filmed if moved and seconds - self.began > MOTION_WARMUP_S else None


class CameraAgent:
    """Records and sends one camera's motion clips until ``stop`` is set."""

    def __init__(self, config: CameraConfig, client: ServerClient, spool_dir: Path, state: SentLog,
                 stop: threading.Event, say: Callable[[str], None] = log.info,
                 state_every_s: float = STATE_CHECK_S) -> None:
        self.config = config
        self.client = client
        self.spool = Spool(spool_dir, int(config.max_spool_mb * 1024 * 1024))
        self.state = state
        self.stop = stop
        self.say = say
        self.event = Event()
        self.accepting = threading.Event()
        self.reconnects = 0
        self.sessions: list[float] = []  # when the main stream opened, each time (wall clock)
        self.uploaded: list[str] = []
        self.state_every_s = state_every_s
        self._state_lock = threading.Lock()
        self._last_check = -math.inf
        self._last_why: str | None = None

    # -- the server's word

    def check_state(self) -> bool:
        """Whether the camera takes clips now, as the server said at most ``state_every_s`` ago
        (one question for all of this camera's threads)."""
        with self._state_lock:
            now = time.monotonic()
            if now - self._last_check >= self.state_every_s:
                self._last_check = now
                state = self.client.camera_state()
                why = "" if state is not None and state.accepting else (
                    state.why_not if state is not None else "unknown (the server cannot be reached)")
                if why != self._last_why:
                    self.say(f"camera {self.config.camera_id}: " + (
                        f"{why}; recording and sending nothing" if why else "opted in and not paused; watching"))
                    self._last_why = why
                if why:
                    self.accepting.clear()
                else:
                    self.accepting.set()
            return self.accepting.is_set()

    def _wait(self, seconds: float) -> None:
        self.stop.wait(seconds)

    # -- threads

    def run(self) -> None:
        threads = [threading.Thread(target=self._record_loop, name=f"rtsp-main-{self.config.camera_id}", daemon=True),
                   threading.Thread(target=self._upload_loop, name=f"rtsp-upload-{self.config.camera_id}",
                                    daemon=True)]
        if self.config.motion_url:
            threads.append(threading.Thread(target=self._motion_loop, name=f"rtsp-motion-{self.config.camera_id}",
                                            daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _connected(self, url: str, body: Callable[[av.container.InputContainer], None]) -> None:
        """Open ``url`` and run ``body`` on it; reconnect with back-off whenever it drops, until
        stopped.  While the server says the camera takes no clips, nothing is opened at all."""
        backoff = 1.0
        while not self.stop.is_set():
            if not self.check_state():
                self._wait(min(self.state_every_s, 5.0))
                continue
            try:
                with _open(url) as container:
                    backoff = 1.0
                    body(container)
            except (av.error.FFmpegError, OSError) as exc:
                if self.stop.is_set():
                    return
                self.reconnects += 1
                self.say(f"camera {self.config.camera_id}: {_redacted(url)} dropped ({exc}); "
                         f"reconnecting in {backoff:.0f} s")
                self._wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            if not self.stop.is_set() and self.accepting.is_set():  # the stream ended by itself: a drop
                self.reconnects += 1
                self._wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _motion_loop(self) -> None:
        assert self.config.motion_url is not None
        self._connected(self.config.motion_url, lambda c: self._watch_motion(c, c.streams.video[0]))

    def _watch_motion(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        watch = MotionWatch(self.config.motion_threshold)
        for frame in container.decode(stream):
            if self.stop.is_set() or not self.accepting.is_set():
                return
            when = watch.moved(frame)
            if when is not None:
                self.event.saw(when)

    def _record_loop(self) -> None:
        self._connected(self.config.url, self._record)

    def _record(self, container: av.container.InputContainer) -> None:
        """Keep ``pre_roll`` seconds of packets from a key frame on; write them out while motion lasts."""
        self.sessions.append(time.time())
        stream = container.streams.video[0]
        watch = None if self.config.motion_url else MotionWatch(self.config.motion_threshold)
        clock = StreamClock()
        ring: deque[tuple[float, av.Packet]] = deque()  # (filmed, packet), from a key frame on
        writer: ClipWriter | None = None
        written_until: float = 0.0
        try:
            for packet in access_units(container.demux(stream)):
                if self.stop.is_set() or not self.accepting.is_set():
                    return
                if packet.pts is None or packet.time_base is None:
                    continue
                now = clock.filmed(float(packet.pts * packet.time_base), time.time())
                # Without a sub-stream, motion is found on the main one.
                if watch is not None:
                    for frame in stream.decode(packet):
                        when = watch.moved(frame)
                        if when is not None:
                            self.event.saw(when)
                ring.append((now, packet))
                _trim(ring, now - self.config.pre_roll)
                wanted = now < self.event.until(self.config.post_roll)
                if writer is not None:
                    too_long = now - writer.start.timestamp() >= self.config.max_clip
                    if not wanted or (too_long and packet.is_keyframe):
                        written_until = self._finish(writer, ring[-2][0] if len(ring) > 1 else now)
                        writer = None
                    else:
                        writer.write(packet)
                        continue
                if wanted and writer is None:
                    writer = self._begin(stream, ring, written_until)
        finally:
            if writer is not None:
                self._finish(writer, time.time())

    def _begin(self, stream: av.VideoStream, ring: deque[tuple[float, av.Packet]],
               written_until: float) -> ClipWriter | None:
        """A new clip from the first key frame in the ring not already in the last clip."""
        packets = list(ring)
        starts = [i for i, (t, p) in enumerate(packets) if p.is_keyframe and t > written_until]
        if not starts:
            return None  # wait for the next key frame
        first = starts[0]
        self.spool.bound()
        writer = ClipWriter(self.spool, self.config.camera_id, stream, datetime.fromtimestamp(packets[first][0], UTC))
        for _, packet in packets[first:]:
            writer.write(packet)
        return writer

    def _finish(self, writer: ClipWriter, reached: float) -> float:
        """Close the clip; returns the time it reaches, so the next one does not repeat it."""
        path = writer.close()
        if path is not None:
            self.say(f"camera {self.config.camera_id}: motion clip {path.name} recorded")
            self.spool.bound()
        return reached

    def _upload_loop(self) -> None:
        while not self.stop.is_set():
            if self.check_state():  # also how the readers learn of a pause: they stop at once
                self.upload_ready()
            self._wait(1.0)
        self.upload_ready()  # what the last event left

    def upload_ready(self) -> None:
        """Send every finished clip, oldest first, while the camera takes clips."""
        for path in self.spool.ready():
            if path.name in self.state.files:  # sent before a restart: only its deletion was lost
                path.unlink(missing_ok=True)
                continue
            if not self.check_state():
                return
            start = clip_start(path.name)
            reply = self.client.post_clip(path, start=start)
            if reply.transient:
                self.say(f"{path.name}: not sent ({reply.error}); will try again")
                return
            clip = (reply.body.get("clips") or [{}])[0]
            outcome = "uploaded" if reply.status in (200, 201) and clip else "refused"
            self.state.record(path.name, clip_id=clip.get("id"), outcome=outcome,
                              message=str(clip.get("message") or reply.error),
                              start=start.isoformat() if start else None)
            self.say(f"{path.name}: {outcome}" + (f" as clip {clip.get('id')}" if outcome == "uploaded"
                                                  else f": {reply.error}"))
            if outcome == "uploaded":
                self.uploaded.append(path.name)
            path.unlink(missing_ok=True)


def _trim(ring: deque[tuple[float, av.Packet]], keep_from: float) -> None:
    """Drop packets older than ``keep_from`` but keep the key frame they start from: the ring
    always begins with a key frame at or before ``keep_from``."""
    while True:
        keys = [i for i, (t, p) in enumerate(ring) if p.is_keyframe]
        if len(keys) < 2 or ring[keys[1]][0] > keep_from:
            if keys and keys[0] > 0:  # packets before the first key frame cannot be decoded
                for _ in range(keys[0]):
                    ring.popleft()
            return
        for _ in range(keys[1]):
            ring.popleft()


def run_agents(agents: list[CameraAgent]) -> None:
    """Every camera in its own threads until stopped (Ctrl-C)."""
    threads = [threading.Thread(target=a.run, name=f"camera-{a.config.camera_id}", daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.5)
    except KeyboardInterrupt:
        for agent in agents:
            agent.stop.set()


def state_path(folder: Path, camera_id: int) -> Path:
    return folder / f"camera-{camera_id}.sent.json"


def build_agents(configs: list[CameraConfig], server: str, folder: Path, stop: threading.Event,
                 say: Callable[[str], None] = log.info, **client_options: Any) -> list[CameraAgent]:
    """One agent per camera, each with its own spool folder and state file under ``folder``."""
    ids = [c.camera_id for c in configs]
    if len(set(ids)) != len(ids):
        raise UserError("each camera may be listed once")
    folder.mkdir(parents=True, exist_ok=True)
    return [CameraAgent(c, ServerClient(server, c.camera_id, c.token, **client_options),
                        folder / f"camera-{c.camera_id}", SentLog.load(state_path(folder, c.camera_id), c.camera_id),
                        stop, say) for c in configs]
