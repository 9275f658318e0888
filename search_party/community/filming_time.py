"""When a clip was filmed: the time of its first frame, in UTC, and where that time came from.

Sources, best first (``StartSource``):
- ``given``: the sender knew it for certain (the RTSP agent cut the clip from a live stream, the
  Frigate bridge took the event's start, the CLI's ``--start``);
- ``neighbour``: the camera's owner typed or corrected it on the clip's page;
- ``container``: the creation time an MP4/MOV records inside the file (read by the pipeline);
- ``file name``: a pattern camera makers write into their file names (``time_from_name``);
- ``file date``: the file's modification time.  Only the last resort, and never silently: a copy
  resets it, so the clip's page marks it as a guess and asks the owner to check it.

Camera file names carry a **local** time without a zone.  Which zone: the camera's own setting
(its owner picks it on the camera's page, preset from their browser), else the zone the sender
reported (the upload page sends the browser's, the folder agent its machine's).  With neither,
a local time in a file name is not used: an hour's error would mislead a search.  Frigate's
event ids are Unix times and need no zone.  Names the project knows (each from the vendor's own
documentation or files):

| maker | example | time |
|---|---|---|
| Frigate event clip / id | ``front_door-1607123955.475377-mxklsc.mp4`` | Unix time (UTC) |
| Frigate export | ``front_door_20240601_081500-20240601_081530_ab12cd.mp4`` | local |
| Frigate download button | ``front_door_06-01-24-08-15-00.mp4`` (MM-dd-yy-HH-mm-ss) | local |
| Reolink SD card / NVR | ``RecM01_20220306_020024_020118_6732828_2821E4C.mp4`` | local |
| Reolink, newer firmware | ``RecS0A_DST20261001_211129_211207_0_5514C0_108CE9.mp4`` | local, ``DST``: summer time |
| Reolink FTP | ``Front Door_00_20230815143015.mp4`` | local |
| Hikvision FTP/NAS | ``192.168.0.64_01_20190319093422939_MOTION_DETECTION.mp4`` (ms at the end) | local |
| Blue Iris (``&CAM.%Y%m%d_%H%M%S``) | ``driveway.20230815_143015.mp4`` | local |
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from search_party.errors import UserError

SOURCES = ("given", "neighbour", "container", "file name", "file date")
GUESSED = "file date"
# A time this far after the upload is a wrong clock or a misread name, not a filming time.
MAX_FUTURE = timedelta(days=1)
EARLIEST_YEAR = 2000
EARLIEST_FILMED = datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class NameTime:
    """A time read from a file name: ``local`` (naive, wall clock of the camera) or ``utc``;
    ``dst`` is True/False when the name says whether summer time was on (Reolink), else None."""

    maker: str
    local: datetime | None = None
    utc: datetime | None = None
    dst: bool | None = None


def _ymd_hms(y: str, mo: str, d: str, h: str, mi: str, s: str) -> datetime | None:
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError:
        return None


def _frigate_event(m: re.Match) -> NameTime | None:
    return NameTime("Frigate", utc=datetime.fromtimestamp(float(m["epoch"]), UTC))


def _local(maker: str) -> Callable[[re.Match], NameTime | None]:
    def read(m: re.Match) -> NameTime | None:
        year = m["y"] if len(m["y"]) == 4 else "20" + m["y"]
        local = _ymd_hms(year, m["mo"], m["d"], m["h"], m["mi"], m["s"])
        if local is None:
            return None
        dst = bool(m["dst"]) if "dst" in m.re.groupindex else None
        return NameTime(maker, local=local, dst=dst)
    return read


_D8 = r"(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})"
_T6 = r"(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})"
# Most specific first: each is anchored on the whole name (without its extension).
_PATTERNS: tuple[tuple[re.Pattern, Callable[[re.Match], NameTime | None]], ...] = (
    # Frigate's event id: "<unix seconds>.<micro>-<6 random>", alone or after the camera name.
    (re.compile(r"^(?:.*[-_])?(?P<epoch>1\d{9}\.\d{1,6})-[a-z0-9]{6}$"), _frigate_event),
    # Reolink recordings: Rec + M(ain)/S(ub) + 2 hex version, [DST]date, start, end, hex fields.
    (re.compile(r"^Rec[A-Z][0-9A-Fa-f]{2}_(?P<dst>DST)?" + _D8 + "_" + _T6 + r"_\d{6}(?:_[0-9A-Fa-f]+)*$"),
     _local("Reolink")),
    # Frigate export: <camera>_<start>-<end>_<id>.
    (re.compile(r"^.+_" + _D8 + "_" + _T6 + r"-\d{8}_\d{6}_[A-Za-z0-9]+$"), _local("Frigate")),
    # Frigate's download button (24-hour format): <camera>_MM-dd-yy-HH-mm-ss.
    (re.compile(r"^.+_(?P<mo>\d{2})-(?P<d>\d{2})-(?P<y>\d{2})-(?P<h>\d{2})-(?P<mi>\d{2})-(?P<s>\d{2})$"),
     _local("Frigate")),
    # Hikvision FTP/NAS: <ip or prefix>_<channel>_<yyyyMMddHHmmss><ms>[_EVENT].
    (re.compile(r"^[^_]+_\d{2}_" + _D8 + _T6 + r"\d{3}(?:_[A-Z_]+)?$"), _local("Hikvision")),
    # Reolink FTP upload: <device name>_<channel>_<yyyyMMddHHmmss>.
    (re.compile(r"^.+_\d{2}_" + _D8 + _T6 + r"$"), _local("Reolink")),
    # Blue Iris's default "&CAM.%Y%m%d_%H%M%S" (a clip number or end time may follow).
    (re.compile(r"^[^.]+\." + _D8 + "_" + _T6 + r"(?:[._-]\d+)*$"), _local("Blue Iris")),
)


def read_name(filename: str) -> NameTime | None:
    """The time a known camera file-name pattern states, or None."""
    stem = filename.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if re.search(r"\.[A-Za-z0-9]{2,4}$", stem) else stem
    for pattern, read in _PATTERNS:
        m = pattern.match(stem)
        if m:
            found = read(m)
            if found is not None:
                return found
    return None


def check_time_zone(name: str | None) -> str | None:
    """An IANA time zone name such as Europe/Berlin, or None; refuses anything else."""
    if name is None or not str(name).strip():
        return None
    text = str(name).strip()
    if len(text) > 64 or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", text):
        raise UserError(f"time zone {text[:40]!r} is not a zone name such as Europe/Berlin")
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"time zone {text!r} is not a known zone; use a name such as Europe/Berlin "
                        "or America/New_York") from None
    return text


def to_utc(local: datetime, zone: str, dst: bool | None = None) -> datetime:
    """A camera's wall-clock time in ``zone`` as UTC.  In the hour that repeats when summer time
    ends, ``dst`` (when the name says) picks the right one; otherwise the first (summer) one."""
    tz = ZoneInfo(zone)
    first = local.replace(tzinfo=tz, fold=0)
    if dst is not None:
        second = local.replace(tzinfo=tz, fold=1)
        for candidate in (first, second):
            if bool(candidate.dst()) == dst:
                return candidate.astimezone(UTC)
    return first.astimezone(UTC)


def _plausible(when: datetime, now: datetime) -> bool:
    return EARLIEST_FILMED <= when <= now + MAX_FUTURE


def time_from_name(filename: str, zones: tuple[str | None, ...], now: datetime) -> datetime | None:
    """The UTC start a camera file name states, read in the first known zone of ``zones``
    (the camera's setting, then the sender's); None when the name has no known pattern, the
    time is implausible, or it is local and no zone is known."""
    found = read_name(filename)
    if found is None:
        return None
    if found.utc is not None:
        when = found.utc
    else:
        zone = next((z for z in zones if z), None)
        if zone is None or found.local is None:
            return None
        when = to_utc(found.local, zone, found.dst)
    return when if _plausible(when, now) else None


def choose_start(*, given: tuple[datetime, str] | None, container: datetime | None,
                 file_date: datetime) -> tuple[datetime, str]:
    """The start of a clip and its source: what the sender or owner stated (``given`` with its
    source, 'given' or 'neighbour'), the container's creation time, a time from the file name
    (``given`` with source 'file name'), else the file's date, marked as a guess."""
    if given is not None and given[1] in ("given", "neighbour"):
        return given[0].astimezone(UTC), given[1]
    if container is not None:
        return container.astimezone(UTC), "container"
    if given is not None:
        return given[0].astimezone(UTC), given[1]
    return file_date.astimezone(UTC), GUESSED
