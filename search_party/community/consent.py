"""Matches and consent: who may see what (invariant 2 of DESIGN.md).

A match pairs a lost report (the search) with a camera's sighting, or with a found report.  A
sighting match moves through  candidate -> asked -> shared | declined,  or to expired when its
search expires first:

- **candidate**: the matcher scored the sighting above the threshold.  Nobody but the camera's
  owner can see anything of it, and the owner not yet either: it waits for the camera's daily
  request quota (``REQUESTS_PER_CAMERA_PER_DAY``, an abuse limit: a busy street's camera is not
  flooded by one search).
- **asked**: the camera owner sees the lost dog's photos beside their own crop, the time, and how
  far from the last-seen point it was, and decides.
- **shared**: only now does the pet owner see that sighting: its crop (persons already blurred
  at ingest), its time, and its *coarse* area (an H3 cell and a distance rounded to 100 m from
  the cell's centre, see coarse_location), never the camera's point or name.
- **declined**: final, and never shown to the pet owner in any form: the owner's progress counts
  merge declined, pending and expired requests into one "requests sent" figure.

A found report is posted to be seen, so a lost × found match above the threshold is ``shared``
at once, with both sides told and able to write through the contact relay.

Answering is idempotent: the same answer twice is one answer; a different answer after the first
is refused.  Cameras that are not opted in (or are paused) are never asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from search_party.community import activity, notifications
from search_party.errors import Forbidden, NotFound, UserError
from search_party.search import scoring
from search_party.search.coarse_location import CoarseArea, coarse_area, public_distance_m
from search_party.search.geofence import Point, distance_m
from search_party.store.db import from_db_time, sql_name, to_db_time, utcnow, write_transaction
from search_party.store.storage import time_or_none

STATES = ("candidate", "asked", "shared", "declined", "expired")
PENDING_STATES = ("candidate", "asked")
REQUESTS_PER_CAMERA_PER_DAY = 5
QUOTA_WINDOW = timedelta(days=1)
CAMERA_OWNER_DISTANCE_STEP_M = 100  # the camera owner knows their camera, not the last-seen pin


@dataclass(frozen=True)
class Match:
    id: int
    lost_report_id: int
    sighting_id: int | None
    camera_id: int | None
    found_report_id: int | None
    score: float
    state: str
    created: datetime
    asked_at: datetime | None
    answered_at: datetime | None


@dataclass(frozen=True)
class ConsentRequest:
    """What a camera owner sees when asked: the lost pet's photos beside their own crop."""

    match_id: int
    state: str
    lost_report_id: int
    pet_name: str
    species: str
    description: str
    lost_photo_ids: tuple[int, ...]
    camera_id: int
    camera_name: str
    sighting_id: int
    first_time: datetime
    last_time: datetime
    distance_m: int  # from this camera to the last-seen point, rounded to 100 m
    score: float
    asked_at: datetime | None


@dataclass(frozen=True)
class SharedSighting:
    """What a pet owner sees of a shared sighting: never the camera's point, name or owner."""

    match_id: int
    sighting_id: int
    label: str
    first_time: datetime
    last_time: datetime
    score: float
    area: CoarseArea
    distance_m: int  # from the last-seen point to the area's centre, rounded to 100 m


@dataclass(frozen=True)
class FoundMatch:
    """A found report that may be the lost pet (or, seen from the finder, the lost report)."""

    match_id: int
    lost_report_id: int
    found_report_id: int
    score: float
    area: CoarseArea  # where the pet was found, coarsely
    found_at: datetime
    source: str  # 'neighbour' | 'shelter'
    photo_ids: tuple[int, ...]


@dataclass(frozen=True)
class Progress:
    """What a pet owner may know of their search's requests (declines are not distinguishable)."""

    requests_sent: int
    shared: int
    found_matches: int


def _match(row: dict) -> Match:
    return Match(id=row["id"], lost_report_id=row["lost_report_id"], sighting_id=row["sighting_id"],
                 camera_id=row["camera_id"], found_report_id=row["found_report_id"],
                 score=row["score"], state=row["state"], created=from_db_time(row["created"]),
                 asked_at=time_or_none(row["asked_at"]), answered_at=time_or_none(row["answered_at"]))


def get_match(db: Database, match_id: int) -> Match:
    rows = list(db.query("SELECT * FROM matches WHERE id = ?", [match_id]))
    if not rows:
        raise NotFound(f"match {match_id} does not exist")
    return _match(rows[0])


def matches_of_report(db: Database, lost_report_id: int) -> list[Match]:
    """Every match of a search, in every state: for the matcher and the tests, never for a page."""
    return [_match(r) for r in db.query(
        "SELECT * FROM matches WHERE lost_report_id = ? ORDER BY id", [lost_report_id])]


PHOTO_COLUMNS = ("lost_report_id", "found_report_id")  # which report a photo belongs to


def report_photo_ids(db: Database, column: str, report_id: int) -> tuple[int, ...]:
    """Photo ids of a lost (``column="lost_report_id"``) or found report, in upload order."""
    return tuple(r[0] for r in db.execute(
        f"SELECT id FROM report_photos WHERE {sql_name(column, PHOTO_COLUMNS)} = ? ORDER BY position",
        [report_id]))


# ---------------------------------------------------------------- recording candidates


def record_candidates(db: Database, lost_report_id: int, visits: Iterable[tuple[Sequence[int], float]],
                      *, compared: dict[int, int] | None = None,
                      now: datetime | None = None) -> list[int]:
    """Store the matcher's candidates for a search, inside the caller's transaction.

    ``visits`` holds (sighting ids of one dog's one visit to one camera, best first; its score),
    best visit first.  The best sighting becomes the match; a visit any of whose sightings this
    search already matched is skipped (a re-run or a later clip of the same visit never asks
    twice), and a search holds at most ``scoring.MAX_ASKS_PER_SEARCH`` sighting matches over its
    life.  ``compared`` maps camera id to how many of its sightings were scored, for the camera
    owners' activity logs.  Returns the new match ids."""
    now_text = to_db_time(now or utcnow())
    report = db.execute("SELECT pet_name, species FROM lost_reports WHERE id = ?",
                        [lost_report_id]).fetchone()
    if report is None:
        raise NotFound(f"lost report {lost_report_id} does not exist")
    held = db.execute("SELECT count(*) FROM matches WHERE lost_report_id = ? AND sighting_id IS NOT NULL",
                      [lost_report_id]).fetchone()[0]
    new_ids: list[int] = []
    likely = dict.fromkeys(compared or {}, 0)
    for sighting_ids, score in visits:
        ids = [int(i) for i in sighting_ids]
        row = db.execute("SELECT camera_id FROM sightings WHERE id = ?", [ids[0]]).fetchone()
        if row is None:
            continue  # purged between scoring and recording
        likely[row[0]] = likely.get(row[0], 0) + 1
        known = db.execute(
            f"SELECT 1 FROM matches WHERE lost_report_id = ? AND sighting_id IN ({', '.join('?' * len(ids))})",
            [lost_report_id, *ids]).fetchone()
        if known or held >= scoring.MAX_ASKS_PER_SEARCH:
            continue
        cursor = db.execute(
            "INSERT INTO matches (lost_report_id, sighting_id, camera_id, score, state, created, "
            "updated) VALUES (?, ?, ?, ?, 'candidate', ?, ?)",
            [lost_report_id, ids[0], row[0], float(score), now_text, now_text])
        new_ids.append(int(cursor.lastrowid or 0))
        held += 1
    for camera_id, count in likely.items():
        activity.record(db, camera_id, lost_report_id, report[0], report[1], "scored",
                        sightings=max((compared or {}).get(camera_id, 0), count),
                        likely=count, at=now)
    return new_ids


def record_found_match(db: Database, lost_report_id: int, found_report_id: int, score: float,
                       now: datetime | None = None) -> int | None:
    """A lost × found match, shared at once, both sides told (inside the caller's transaction).
    Returns the new match id, or None if the pair was already matched."""
    now_text = to_db_time(now or utcnow())
    cursor = db.execute(
        "INSERT OR IGNORE INTO matches (lost_report_id, found_report_id, score, state, created, "
        "answered_at, updated) VALUES (?, ?, ?, 'shared', ?, ?, ?)",
        [lost_report_id, found_report_id, float(score), now_text, now_text, now_text])
    if not cursor.rowcount:
        return None
    match_id = cursor.lastrowid
    owner_id, pet_name, species = db.execute(
        "SELECT owner_id, pet_name, species FROM lost_reports WHERE id = ?", [lost_report_id]).fetchone()
    reporter_id, source = db.execute(
        "SELECT reporter_id, source FROM found_reports WHERE id = ?", [found_report_id]).fetchone()
    who = "A shelter" if source == "shelter" else "A neighbour"
    notifications.notify(
        db, owner_id, "found_match", f"A found {species} may be {pet_name}",
        f"{who} reported a found {species} whose photos look like {pet_name}. Open Search Party to "
        "see the photos and write to them through the contact relay.",
        match_id=match_id, lost_report_id=lost_report_id)
    notifications.notify(
        db, reporter_id, "found_match", f"The {species} you found may be {pet_name}",
        f"A lost-{species} report for {pet_name} looks like the {species} you reported found. Open "
        "Search Party to compare the photos and write to the owner through the contact relay.",
        match_id=match_id, lost_report_id=lost_report_id)
    return match_id


# ---------------------------------------------------------------- asking


def send_requests(db: Database, now: datetime | None = None,
                  per_camera_per_day: int = REQUESTS_PER_CAMERA_PER_DAY) -> list[int]:
    """Ask camera owners about candidates of active searches, best score first, at most
    ``per_camera_per_day`` requests per camera in any 24 hours; the rest wait for a later run.
    Only opted-in, unpaused cameras are asked.  Returns the ids of the matches asked."""
    now = now or utcnow()
    asked: list[int] = []
    with write_transaction(db):
        rows = db.execute(
            "SELECT m.id, m.camera_id, m.lost_report_id, r.pet_name, r.species, r.lat, r.lon, "
            "c.owner_id, c.name, c.lat, c.lon FROM matches m "
            "JOIN lost_reports r ON r.id = m.lost_report_id JOIN cameras c ON c.id = m.camera_id "
            "WHERE m.state = 'candidate' AND r.status = 'active' AND c.opted_in = 1 AND c.paused = 0 "
            "ORDER BY m.score DESC, m.id").fetchall()
        used: dict[int, int] = {}
        since = to_db_time(now - QUOTA_WINDOW)
        for (match_id, camera_id, report_id, pet_name, species, r_lat, r_lon,
             owner_id, camera_name, c_lat, c_lon) in rows:
            if camera_id not in used:
                # Counted from the camera's activity log, which outlives deleted searches: a
                # search deleted and made again does not get the camera's requests back.
                used[camera_id] = db.execute(
                    "SELECT count(*) FROM camera_activity WHERE camera_id = ? AND event = 'asked' "
                    "AND at >= ?", [camera_id, since]).fetchone()[0]
            if used[camera_id] >= per_camera_per_day:
                continue
            used[camera_id] += 1
            db.execute("UPDATE matches SET state = 'asked', asked_at = ?, updated = ? WHERE id = ?",
                       [to_db_time(now), to_db_time(now), match_id])
            metres = _rounded(distance_m(Point(c_lat, c_lon), Point(r_lat, r_lon)))
            camera = f"your camera {camera_name!r}" if camera_name else "one of your cameras"
            notifications.notify(
                db, owner_id, "consent_request", f"Could this be {pet_name}?",
                f"{pet_name}, a lost {species}, was last seen about {metres} m from {camera}, which "
                f"filmed a {species} that looks similar. Open Search Party to compare the photos "
                "and choose whether to share that one sighting with the owner. Nothing is shared "
                "unless you say so.", match_id=match_id)
            activity.record(db, camera_id, report_id, pet_name, species, "asked", sightings=1, at=now)
            asked.append(match_id)
    return asked


def _rounded(metres: float) -> int:
    step = CAMERA_OWNER_DISTANCE_STEP_M
    return int(round(metres / step)) * step


# ---------------------------------------------------------------- answering


def _owned_sighting_match(db: Database, match_id: int, user_id: int) -> dict:
    rows = list(db.query(
        "SELECT m.*, c.owner_id AS camera_owner, r.owner_id AS report_owner, r.pet_name, r.species "
        "FROM matches m JOIN cameras c ON c.id = m.camera_id "
        "JOIN lost_reports r ON r.id = m.lost_report_id WHERE m.id = ?", [match_id]))
    if not rows or rows[0]["camera_owner"] != user_id:
        # The same answer whether the match is someone else's or does not exist.
        raise Forbidden(f"request {match_id} is not one of yours")
    return rows[0]


def answer(db: Database, match_id: int, user_id: int, share: bool, now: datetime | None = None) -> Match:
    """The camera owner's answer to a request.  Repeating the same answer changes nothing; a
    different answer after the first is refused (a share cannot be un-shown, and a decline
    stays private)."""
    wanted = "shared" if share else "declined"
    now = now or utcnow()
    with write_transaction(db):
        row = _owned_sighting_match(db, match_id, user_id)
        state = row["state"]
        if state == wanted:
            return _match(row)
        if state in ("shared", "declined"):
            raise UserError(f"you already {'shared' if state == 'shared' else 'declined'} this "
                            "sighting; the answer cannot be changed")
        if state == "expired":
            raise UserError("this request expired: the search for this pet has ended")
        if state == "candidate":
            raise UserError("you have not been asked about this sighting yet")
        db.execute("UPDATE matches SET state = ?, answered_at = ?, updated = ? WHERE id = ?",
                   [wanted, to_db_time(now), to_db_time(now), match_id])
        activity.record(db, row["camera_id"], row["lost_report_id"], row["pet_name"], row["species"],
                        wanted, sightings=1, at=now)
        if share:
            notifications.notify(
                db, row["report_owner"], "sighting_shared",
                f"A neighbour shared a sighting that may be {row['pet_name']}",
                f"A camera near where {row['pet_name']} was last seen filmed a {row['species']} that "
                "looks similar, and its owner chose to share it with you. Open Search Party to see "
                "the picture, the time and the area.",
                match_id=match_id, lost_report_id=row["lost_report_id"])
    return get_match(db, match_id)


def share(db: Database, match_id: int, user_id: int, now: datetime | None = None) -> Match:
    return answer(db, match_id, user_id, True, now)


def decline(db: Database, match_id: int, user_id: int, now: datetime | None = None) -> Match:
    return answer(db, match_id, user_id, False, now)


# ---------------------------------------------------------------- what each party sees


def requests_for_owner(db: Database, owner_id: int, *, states: Iterable[str] = ("asked",),
                       camera_id: int | None = None) -> list[ConsentRequest]:
    """A camera owner's requests (by default the unanswered ones), newest first."""
    states = tuple(states)
    if not states or any(s not in ("asked", "shared", "declined", "expired") for s in states):
        raise UserError("requests can be listed as asked, shared, declined or expired")
    extra, params = "", [owner_id, *states]
    if camera_id is not None:
        extra, params = " AND c.id = ?", [*params, camera_id]
    rows = db.query(
        "SELECT m.*, r.pet_name, r.species, r.description, r.lat AS r_lat, r.lon AS r_lon, "
        "c.name AS camera_name, c.lat AS c_lat, c.lon AS c_lon, s.first_time, s.last_time "
        "FROM matches m JOIN cameras c ON c.id = m.camera_id "
        "JOIN lost_reports r ON r.id = m.lost_report_id JOIN sightings s ON s.id = m.sighting_id "
        f"WHERE c.owner_id = ? AND m.state IN ({', '.join('?' * len(states))}){extra} "
        "ORDER BY m.asked_at DESC, m.id DESC", params)
    return [ConsentRequest(
        match_id=r["id"], state=r["state"], lost_report_id=r["lost_report_id"],
        pet_name=r["pet_name"], species=r["species"], description=r["description"],
        lost_photo_ids=report_photo_ids(db, "lost_report_id", r["lost_report_id"]),
        camera_id=r["camera_id"], camera_name=r["camera_name"], sighting_id=r["sighting_id"],
        first_time=from_db_time(r["first_time"]), last_time=from_db_time(r["last_time"]),
        distance_m=_rounded(distance_m(Point(r["c_lat"], r["c_lon"]), Point(r["r_lat"], r["r_lon"]))),
        score=r["score"], asked_at=time_or_none(r["asked_at"]),
    ) for r in rows]


def _report_owned_by(db: Database, lost_report_id: int, viewer_id: int) -> tuple[float, float]:
    row = db.execute("SELECT owner_id, lat, lon FROM lost_reports WHERE id = ?", [lost_report_id]).fetchone()
    if row is None or row[0] != viewer_id:
        raise Forbidden(f"lost report {lost_report_id} is not yours")
    return row[1], row[2]


def shared_sightings(db: Database, lost_report_id: int, viewer_id: int) -> list[SharedSighting]:
    """The sightings camera owners shared with this search, oldest first (a timeline), for the
    report's owner only.  Places are coarse areas; nothing names a camera."""
    lat, lon = _report_owned_by(db, lost_report_id, viewer_id)
    last_seen_point = Point(lat, lon)
    rows = db.execute(
        "SELECT m.id, m.sighting_id, m.score, s.label, s.first_time, s.last_time, c.lat, c.lon "
        "FROM matches m JOIN sightings s ON s.id = m.sighting_id JOIN cameras c ON c.id = m.camera_id "
        "WHERE m.lost_report_id = ? AND m.state = 'shared' ORDER BY s.first_time, m.id",
        [lost_report_id]).fetchall()
    out = []
    for match_id, sighting_id, score, label, first, last, c_lat, c_lon in rows:
        area = coarse_area(c_lat, c_lon)  # computed here; only the cell leaves this function
        out.append(SharedSighting(match_id, sighting_id, label, from_db_time(first), from_db_time(last),
                                  score, area, public_distance_m(last_seen_point, area)))
    return out


def found_matches(db: Database, viewer_id: int, *, lost_report_id: int | None = None,
                  found_report_id: int | None = None) -> list[FoundMatch]:
    """Lost × found matches of one report, for that report's owner (lost) or reporter (found)."""
    if (lost_report_id is None) == (found_report_id is None):
        raise ValueError("give exactly one of lost_report_id and found_report_id")
    param: int | None
    if lost_report_id is not None:
        _report_owned_by(db, lost_report_id, viewer_id)
        where, param = "m.lost_report_id = ?", lost_report_id
    else:
        row = db.execute("SELECT reporter_id FROM found_reports WHERE id = ?", [found_report_id]).fetchone()
        if row is None or row[0] != viewer_id:
            raise Forbidden(f"found report {found_report_id} is not yours")
        where, param = "m.found_report_id = ?", found_report_id
    rows = db.execute(
        "SELECT m.id, m.lost_report_id, m.found_report_id, m.score, f.lat, f.lon, f.found_at, f.source "
        f"FROM matches m JOIN found_reports f ON f.id = m.found_report_id WHERE {where} "
        "AND m.state = 'shared' ORDER BY m.score DESC", [param]).fetchall()
    out = []
    for match_id, lost_id, found_id, score, lat, lon, found_at, source in rows:
        photos = (report_photo_ids(db, "found_report_id", found_id) if lost_report_id is not None
                  else report_photo_ids(db, "lost_report_id", lost_id))
        out.append(FoundMatch(match_id, lost_id, found_id, score, coarse_area(lat, lon),
                              from_db_time(found_at), source, photos))
    return out


def progress(db: Database, lost_report_id: int, viewer_id: int) -> Progress:
    """The search's counts its owner may see: every request that went out (whatever became of
    it) and the shared ones, so a decline can never be told apart from a silence."""
    _report_owned_by(db, lost_report_id, viewer_id)
    sent, shared = db.execute(
        "SELECT count(asked_at), coalesce(sum(state = 'shared'), 0) FROM matches "
        "WHERE lost_report_id = ? AND sighting_id IS NOT NULL", [lost_report_id]).fetchone()
    found = db.execute("SELECT count(*) FROM matches WHERE lost_report_id = ? AND found_report_id "
                       "IS NOT NULL AND state = 'shared'", [lost_report_id]).fetchone()[0]
    return Progress(requests_sent=sent, shared=shared, found_matches=found)


def sighting_image(db: Database, match_id: int, viewer_id: int) -> bytes:
    """A matched sighting's crop: for its camera's owner always, for the pet owner only once
    shared.  Anyone else, or an unshared sighting, gets Forbidden."""
    row = db.execute(
        "SELECT m.state, m.sighting_id, c.owner_id, r.owner_id FROM matches m "
        "JOIN cameras c ON c.id = m.camera_id JOIN lost_reports r ON r.id = m.lost_report_id "
        "WHERE m.id = ?", [match_id]).fetchone()
    if row is None or not (row[2] == viewer_id or (row[3] == viewer_id and row[0] == "shared")):
        raise Forbidden(f"sighting of match {match_id} is not visible to you")
    return db.execute("SELECT thumbnail FROM sightings WHERE id = ?", [row[1]]).fetchone()[0]


def photo_image(db: Database, photo_id: int, viewer_id: int) -> bytes:
    """A report photo (a crop of the pet, persons blurred, no metadata), for: the report's
    owner; a camera owner asked about that lost report; the other side of a lost × found match;
    an approved shelter whose service area holds an active lost report."""
    row = db.execute("SELECT lost_report_id, found_report_id, image FROM report_photos WHERE id = ?",
                     [photo_id]).fetchone()
    if row is None:
        raise Forbidden(f"photo {photo_id} is not visible to you")
    lost_id, found_id, image = row
    if lost_id is not None:
        allowed = db.execute(
            "SELECT 1 FROM lost_reports r WHERE r.id = ? AND (r.owner_id = ? "
            "OR EXISTS (SELECT 1 FROM matches m JOIN cameras c ON c.id = m.camera_id "
            "  WHERE m.lost_report_id = r.id AND c.owner_id = ? AND m.asked_at IS NOT NULL) "
            "OR EXISTS (SELECT 1 FROM matches m JOIN found_reports f ON f.id = m.found_report_id "
            "  WHERE m.lost_report_id = r.id AND f.reporter_id = ? AND m.state = 'shared'))",
            [lost_id, viewer_id, viewer_id, viewer_id]).fetchone() or _shelter_sees(db, lost_id, viewer_id)
    else:
        allowed = db.execute(
            "SELECT 1 FROM found_reports f WHERE f.id = ? AND (f.reporter_id = ? "
            "OR EXISTS (SELECT 1 FROM matches m JOIN lost_reports r ON r.id = m.lost_report_id "
            "  WHERE m.found_report_id = f.id AND r.owner_id = ? AND m.state = 'shared'))",
            [found_id, viewer_id, viewer_id]).fetchone()
    if not allowed:
        raise Forbidden(f"photo {photo_id} is not visible to you")
    return image


def _shelter_sees(db: Database, lost_report_id: int, viewer_id: int) -> bool:
    shelter = db.execute("SELECT lat, lon, service_radius_m FROM shelters WHERE user_id = ? "
                         "AND approved_at IS NOT NULL", [viewer_id]).fetchone()
    report = db.execute("SELECT lat, lon FROM lost_reports WHERE id = ? AND status = 'active'",
                        [lost_report_id]).fetchone()
    if shelter is None or report is None:
        return False
    return distance_m(Point(shelter[0], shelter[1]), Point(*report)) <= shelter[2]
