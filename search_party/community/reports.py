"""Lost reports (the searches) and found reports (a neighbour who found a dog, a shelter intake).

A lost report: a pet's name, its species (dog; cat accepted), 1–5 photos, the last-seen point and
time, a radius (default 1 km, capped at 5 km: geofence.parse_radius_m) and an expiry (default 3
days, renewable).  Its status is active, found or expired.  Every photo must show an animal of the
reported species: a photo without one is refused, saying which photo and why, and nothing is
stored.  A photo with a person and a dog uses only the dog; what is kept of a photo is a crop of
the animal with every person region blurred and no metadata, shown to camera owners who are asked.

A found report: species, 1–5 photos, where and when the pet was found; posted by a neighbour or
(as an intake) by an approved shelter.  Each new found report is matched against active lost
reports nearby, and each new lost report against recent open found reports (``FOUND_MATCH_RADIUS_M``
from the last-seen point: a loose dog may be carried further than a camera search reaches).

Submitting the same report twice (a double tap, a retried request) returns the first one: a report
is keyed by its owner and a submission key, by default a hash of its content and photos.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from sqlite_utils import Database

from embeddings.embedder import crop_box
from embeddings.images import load_rgb
from embeddings.redact import blurred_frame
from search_party.community import consent, limits
from search_party.community.accounts import approved_shelter
from search_party.errors import Forbidden, ImageError, NotFound, UserError
from search_party.search import scoring
from search_party.search.geofence import (
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    SIGHTING_SLACK,
    Point,
    bbox_where,
    bounding_box,
    distance_m,
    parse_point,
    parse_radius_m,
)
from search_party.search.query_photos import QueryPhotos, query_from_photos
from search_party.store.db import from_db_time, insert_row, sql_name, to_db_time, utcnow, write_transaction
from search_party.store.storage import blob_to_vector, vector_to_blob
from search_party.vision import Models

SPECIES = ("dog", "cat")
MIN_PHOTOS, MAX_PHOTOS = 1, 5
MAX_PET_NAME = 60
MAX_DESCRIPTION = 2000
DEFAULT_EXPIRY = timedelta(days=3)
MAX_EXPIRY = timedelta(days=14)
FOUND_OPEN_FOR = timedelta(days=14)  # how long a found report is matched against new lost ones
FOUND_MATCH_RADIUS_M = 10_000.0
MAX_REPORT_AGE = timedelta(days=60)  # a last-seen time older than this cannot be searched
CLOCK_SKEW = timedelta(minutes=10)  # a phone's clock a little ahead is not "the future"
PHOTO_SIDE = 480
PHOTO_QUALITY = 85
PHOTO_MARGIN = 0.2


@dataclass(frozen=True)
class LostReport:
    id: int
    owner_id: int
    pet_name: str
    species: str
    description: str
    last_seen_point: Point
    last_seen: datetime
    radius_m: float
    status: str  # active | found | expired
    expires: datetime
    scored_through: int
    created: datetime
    updated: datetime
    ended: datetime | None
    photo_ids: tuple[int, ...]


@dataclass(frozen=True)
class FoundReport:
    id: int
    reporter_id: int
    source: str  # neighbour | shelter
    species: str
    description: str
    place: Point
    found_at: datetime
    status: str  # open | closed
    expires: datetime
    created: datetime
    photo_ids: tuple[int, ...]


@dataclass(frozen=True)
class PhotoQuery:
    """One accepted photo: what is kept of it and its query vector."""

    image_jpeg: bytes
    box: tuple[float, float, float, float]
    label: str
    vector: np.ndarray


# ---------------------------------------------------------------- reading rows


def _lost(db: Database, row: dict) -> LostReport:
    return LostReport(
        id=row["id"], owner_id=row["owner_id"], pet_name=row["pet_name"], species=row["species"],
        description=row["description"], last_seen_point=Point(row["lat"], row["lon"]),
        last_seen=from_db_time(row["last_seen"]), radius_m=row["radius_m"], status=row["status"],
        expires=from_db_time(row["expires"]), scored_through=row["scored_through"],
        created=from_db_time(row["created"]), updated=from_db_time(row["updated"]),
        ended=from_db_time(row["ended"]) if row["ended"] else None,
        photo_ids=consent.report_photo_ids(db, "lost_report_id", row["id"]))


def _found(db: Database, row: dict) -> FoundReport:
    return FoundReport(
        id=row["id"], reporter_id=row["reporter_id"], source=row["source"], species=row["species"],
        description=row["description"], place=Point(row["lat"], row["lon"]),
        found_at=from_db_time(row["found_at"]), status=row["status"],
        expires=from_db_time(row["expires"]), created=from_db_time(row["created"]),
        photo_ids=consent.report_photo_ids(db, "found_report_id", row["id"]))


def get_lost_report(db: Database, report_id: int) -> LostReport:
    rows = list(db.query("SELECT * FROM lost_reports WHERE id = ?", [report_id]))
    if not rows:
        raise NotFound(f"lost report {report_id} does not exist")
    return _lost(db, rows[0])


def get_found_report(db: Database, report_id: int) -> FoundReport:
    rows = list(db.query("SELECT * FROM found_reports WHERE id = ?", [report_id]))
    if not rows:
        raise NotFound(f"found report {report_id} does not exist")
    return _found(db, rows[0])


def list_lost_reports(db: Database, *, owner_id: int | None = None,
                      status: str | None = None) -> list[LostReport]:
    where: list[str] = []
    params: list[object] = []
    if owner_id is not None:
        where.append("owner_id = ?")
        params.append(owner_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = "SELECT * FROM lost_reports" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    return [_lost(db, r) for r in db.query(sql, params)]


def list_found_reports(db: Database, *, reporter_id: int | None = None) -> list[FoundReport]:
    if reporter_id is None:
        rows = db.query("SELECT * FROM found_reports ORDER BY id")
    else:
        rows = db.query("SELECT * FROM found_reports WHERE reporter_id = ? ORDER BY id", [reporter_id])
    return [_found(db, r) for r in rows]


def query_vectors(db: Database, lost_report_id: int, model_version: str) -> np.ndarray:
    """The search's query vectors of one model version: (n_photos, dim) float32 (empty once the
    search has ended with "found")."""
    rows = db.execute(
        "SELECT q.vector FROM query_vectors q JOIN report_photos p ON p.id = q.photo_id "
        "WHERE p.lost_report_id = ? AND q.model_version = ? ORDER BY p.position",
        [lost_report_id, model_version]).fetchall()
    return np.vstack([blob_to_vector(r[0]) for r in rows]) if rows else np.zeros((0, 0), np.float32)


def found_vectors(db: Database, found_report_id: int, model_version: str) -> np.ndarray:
    rows = db.execute(
        "SELECT q.vector FROM query_vectors q JOIN report_photos p ON p.id = q.photo_id "
        "WHERE p.found_report_id = ? AND q.model_version = ? ORDER BY p.position",
        [found_report_id, model_version]).fetchall()
    return np.vstack([blob_to_vector(r[0]) for r in rows]) if rows else np.zeros((0, 0), np.float32)


# ---------------------------------------------------------------- validating input


def _text(value: object, what: str, max_chars: int, required: bool, one_line: bool = True) -> str:
    text = str(value or "").strip()
    if one_line:  # a name: runs of spaces, tabs and newlines become one space
        text = " ".join(text.split())
    if required and not text:
        raise UserError(f"{what} is missing")
    if len(text) > max_chars:
        raise UserError(f"{what} may have at most {max_chars} characters")
    return text


def _species(value: object) -> str:
    species = str(value or "").strip().lower()
    if species not in SPECIES:
        raise UserError(f"species {value!r} is not supported: report a dog or a cat")
    return species


def _past_time(moment: datetime, what: str, now: datetime) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise UserError(f"{what} needs a date, a time and a time zone")
    if moment > now + CLOCK_SKEW:
        raise UserError(f"{what} {moment.isoformat(timespec='minutes')} is in the future")
    if moment < now - MAX_REPORT_AGE:
        raise UserError(f"{what} is more than {MAX_REPORT_AGE.days} days ago; footage that old is "
                        "no longer kept")
    return moment


def _photo_bytes(photos: Sequence[bytes | str | Path]) -> list[bytes]:
    if not MIN_PHOTOS <= len(photos) <= MAX_PHOTOS:
        raise UserError(f"give {MIN_PHOTOS} to {MAX_PHOTOS} photos, not {len(photos)}")
    out = []
    for n, photo in enumerate(photos, 1):
        if isinstance(photo, bytes):
            out.append(photo)
            continue
        try:
            out.append(Path(photo).read_bytes())
        except OSError as exc:
            raise UserError(f"photo {n} ({photo}) cannot be read: {exc.strerror}") from None
    return out


def _submission_key(parts: dict, photos: list[bytes]) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for photo in photos:
        digest.update(hashlib.sha256(photo).digest())
    return "content:" + digest.hexdigest()


def _kept_image(rgb: np.ndarray, persons: list, box: tuple[float, float, float, float]) -> bytes:
    """The pet's crop, cut from the photo after every person region was blurred (so a person at
    the crop's edge is blurred too), at most PHOTO_SIDE pixels, as a JPEG without metadata."""
    crop = crop_box(blurred_frame(rgb, persons), box, PHOTO_MARGIN)
    img = Image.fromarray(np.ascontiguousarray(crop))
    img.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=PHOTO_QUALITY, optimize=True)
    return out.getvalue()


def read_photos(photos: list[bytes], species: str, models: Models) -> list[PhotoQuery]:
    """Each photo's pet, as kept and as a query vector; refuses the whole set if any photo has no
    animal of ``species`` (query_photos.query_from_photos says which photo and why)."""
    images = []
    for number, photo in enumerate(photos, start=1):
        try:
            images.append(load_rgb(photo))
        except ImageError as exc:
            raise ImageError(f"photo {number}: {exc}") from None
    query = query_from_photos(images, models, species=species)
    # Person boxes come from query_from_photos' own pass: asking the detector again here would
    # rerun it on every photo but the last (it caches one frame).
    return [PhotoQuery(_kept_image(rgb, list(persons), box), box, species, vector)
            for rgb, box, vector, persons in zip(images, query.boxes, query.vectors, query.person_boxes)]


def report_query(db: Database, lost_report_id: int, model_version: str) -> QueryPhotos | None:
    """The search's query as the matcher takes it, or None once its vectors are gone (found)."""
    vectors = query_vectors(db, lost_report_id, model_version)
    if len(vectors) == 0:
        return None
    (species,) = db.execute("SELECT species FROM lost_reports WHERE id = ?", [lost_report_id]).fetchone()
    return QueryPhotos(species=species, vectors=vectors, model_version=model_version)


# ---------------------------------------------------------------- lost reports


def _store_photos(db: Database, column: str, report_id: int, photos: list[PhotoQuery],
                  model_version: str) -> None:
    column = sql_name(column, consent.PHOTO_COLUMNS)
    for position, photo in enumerate(photos):
        x1, y1, x2, y2 = (float(v) for v in photo.box)
        photo_id = insert_row(db, "report_photos", {
            column: report_id, "position": position, "image": photo.image_jpeg,
            "box_x1": x1, "box_y1": y1, "box_x2": x2, "box_y2": y2, "label": photo.label})
        insert_row(db, "query_vectors", {"photo_id": photo_id, "model_version": model_version,
                                          "vector": vector_to_blob(photo.vector)})


def create_lost_report(db: Database, owner_id: int, *, pet_name: str, species: str,
                       photos: Sequence[bytes | str | Path], lat: object, lon: object,
                       last_seen: datetime, models: Models,
                       radius_m: object = None, expires_in: timedelta | None = None,
                       description: str = "", submission_key: str | None = None,
                       now: datetime | None = None) -> tuple[LostReport, bool]:
    """Report a pet lost.  Returns ``(report, created)``; ``created`` is False when the same
    submission was already stored (nothing new is stored then, and the models do not run).
    The search itself is run by ``standing_searches.search_report``."""
    now = now or utcnow()
    pet_name = _text(pet_name, "the pet's name", MAX_PET_NAME, required=True)
    species = _species(species)
    description = _text(description, "description", MAX_DESCRIPTION, required=False, one_line=False)
    point = parse_point(lat, lon)
    radius = parse_radius_m(radius_m)
    last_seen = _past_time(last_seen, "the last-seen time", now)
    expires_in = expires_in or DEFAULT_EXPIRY
    if not timedelta(hours=1) <= expires_in <= MAX_EXPIRY:
        raise UserError(f"a search runs from 1 hour to {MAX_EXPIRY.days} days at a time (renewable)")
    images = _photo_bytes(photos)
    key = submission_key or _submission_key(
        {"pet": pet_name, "species": species, "lat": point.lat, "lon": point.lon,
         "last_seen": to_db_time(last_seen), "radius": radius}, images)
    existing = _existing(db, "lost_reports", "owner_id", owner_id, key)
    if existing is not None:
        return get_lost_report(db, existing), False
    limits.check(db, owner_id, limits.SEARCH, now)  # before the models run
    accepted = read_photos(images, species, models)
    with write_transaction(db):
        existing = _existing(db, "lost_reports", "owner_id", owner_id, key)
        if existing is not None:  # the twin request stored it while our models ran
            return get_lost_report(db, existing), False
        limits.take(db, owner_id, limits.SEARCH, now)
        report_id = insert_row(db, "lost_reports", {
            "owner_id": owner_id, "pet_name": pet_name, "species": species,
            "description": description, "lat": point.lat, "lon": point.lon,
            "last_seen": to_db_time(last_seen), "radius_m": radius, "status": "active",
            "expires": to_db_time(now + expires_in), "scored_through": 0,
            "submission_key": key, "created": to_db_time(now), "updated": to_db_time(now),
            "ended": None})
        _store_photos(db, "lost_report_id", report_id, accepted, models.embedder.version)
        _match_lost_against_found(db, report_id, models.embedder.version, now)
    return get_lost_report(db, report_id), True


# Each report table with the column naming who made the report (the only names _existing takes).
_REPORTERS = {"lost_reports": "owner_id", "found_reports": "reporter_id"}


def _existing(db: Database, table: str, owner_column: str, owner_id: int, key: str) -> int | None:
    if _REPORTERS.get(sql_name(table, _REPORTERS)) != owner_column:
        raise ValueError(f"{table} names its reporter in {_REPORTERS[table]!r}, not {owner_column!r}")
    row = db.execute(f"SELECT id FROM {table} WHERE {owner_column} = ? AND submission_key = ?",
                     [owner_id, key]).fetchone()
    return row[0] if row else None


def owned_lost_report(db: Database, report_id: int, user_id: int) -> LostReport:
    report = get_lost_report(db, report_id)
    if report.owner_id != user_id:
        raise Forbidden(f"lost report {report_id} is not yours")
    return report


def renew(db: Database, report_id: int, user_id: int, *, extend_by: timedelta | None = None,
          now: datetime | None = None) -> LostReport:
    """Keep an active or expired search going for ``extend_by`` (default 3 days) from now.  A
    search whose pet was found cannot be renewed: report it lost again."""
    now = now or utcnow()
    extend_by = extend_by or DEFAULT_EXPIRY
    if not timedelta(hours=1) <= extend_by <= MAX_EXPIRY:
        raise UserError(f"a search is renewed for 1 hour to {MAX_EXPIRY.days} days at a time")
    report = owned_lost_report(db, report_id, user_id)
    if report.status == "found":
        raise UserError(f"{report.pet_name} was marked found; report again if lost again")
    with write_transaction(db):
        db.execute("UPDATE lost_reports SET status = 'active', expires = ?, ended = NULL, updated = ? "
                   "WHERE id = ?", [to_db_time(now + extend_by), to_db_time(now), report_id])
    return get_lost_report(db, report_id)


def delete_lost_report(db: Database, report_id: int, user_id: int) -> None:
    """Delete the report with its photos, vectors, matches and conversations."""
    owned_lost_report(db, report_id, user_id)
    with write_transaction(db):
        db.execute("UPDATE camera_activity SET pet_name = '', lost_report_id = NULL "
                   "WHERE lost_report_id = ?", [report_id])
        db.execute("DELETE FROM lost_reports WHERE id = ?", [report_id])


def active_reports_near(db: Database, point: Point, radius_m: float) -> list[LostReport]:
    """Active lost reports whose last-seen point is within ``radius_m`` (a shelter's service
    area, which may exceed a search's cap)."""
    return [get_lost_report(db, i) for i in _near(db, "active lost", [], point, radius_m)]


def shelter_dashboard(db: Database, shelter_user_id: int) -> list[LostReport]:
    """The active lost reports in an approved shelter's service area."""
    shelter = approved_shelter(db, shelter_user_id)
    return active_reports_near(db, shelter.location, shelter.service_radius_m)


# The place searches _near makes, by name: (table, condition, with ? for the caller's values).
# Only these are ever put into SQL text; a caller names one and passes its values as parameters.
_NEAR: dict[str, tuple[str, str]] = {
    "active lost": ("lost_reports", "status = 'active'"),
    "open found of species since": ("found_reports", "status = 'open' AND species = ? AND expires > ? "
                                                     "AND found_at >= ?"),
    "active lost of species before": ("lost_reports", "status = 'active' AND species = ? AND last_seen <= ?"),
}


def _near(db: Database, query: str, params: list, point: Point, radius_m: float) -> list[int]:
    """Ids of the rows of the named ``query`` (see _NEAR) whose lat/lon lie within radius_m,
    nearest first (bounding-box prefilter in SQL, then the exact distance)."""
    table, condition = _NEAR[sql_name(query, _NEAR)]
    if MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M:
        box = bounding_box(point, radius_m)
        sql = f"SELECT id, lat, lon FROM {table} WHERE {condition} AND {bbox_where()}"
        rows = db.execute(sql, [*params, *box.sql_params()]).fetchall()
    else:  # wider than the geofence's cap: a shelter's area or the found-match radius
        rows = db.execute(f"SELECT id, lat, lon FROM {table} WHERE {condition}", params).fetchall()
    near = [(distance_m(point, Point(lat, lon)), i) for i, lat, lon in rows]
    return [i for d, i in sorted(near) if d <= radius_m]


# ---------------------------------------------------------------- found reports


def create_found_report(db: Database, reporter_id: int, *, species: str,
                        photos: Sequence[bytes | str | Path], lat: object, lon: object,
                        found_at: datetime, models: Models,
                        description: str = "", as_shelter: bool = False,
                        submission_key: str | None = None,
                        now: datetime | None = None) -> tuple[FoundReport, bool]:
    """Report a found pet (``as_shelter``: an intake by an approved shelter).  It is matched at
    once against active lost reports nearby.  Returns ``(report, created)`` like
    ``create_lost_report``."""
    now = now or utcnow()
    species = _species(species)
    description = _text(description, "description", MAX_DESCRIPTION, required=False, one_line=False)
    point = parse_point(lat, lon)
    found_at = _past_time(found_at, "the time it was found", now)
    if as_shelter:
        approved_shelter(db, reporter_id)
    images = _photo_bytes(photos)
    key = submission_key or _submission_key(
        {"species": species, "lat": point.lat, "lon": point.lon,
         "found_at": to_db_time(found_at)}, images)
    existing = _existing(db, "found_reports", "reporter_id", reporter_id, key)
    if existing is not None:
        return get_found_report(db, existing), False
    rate = limits.SHELTER_INTAKE if as_shelter else limits.FOUND_REPORT
    limits.check(db, reporter_id, rate, now)
    accepted = read_photos(images, species, models)
    with write_transaction(db):
        existing = _existing(db, "found_reports", "reporter_id", reporter_id, key)
        if existing is not None:
            return get_found_report(db, existing), False
        limits.take(db, reporter_id, rate, now)
        report_id = insert_row(db, "found_reports", {
            "reporter_id": reporter_id, "source": "shelter" if as_shelter else "neighbour",
            "species": species, "description": description, "lat": point.lat, "lon": point.lon,
            "found_at": to_db_time(found_at), "status": "open",
            "expires": to_db_time(now + FOUND_OPEN_FOR), "submission_key": key,
            "created": to_db_time(now), "updated": to_db_time(now)})
        _store_photos(db, "found_report_id", report_id, accepted, models.embedder.version)
        _match_found_against_lost(db, report_id, models.embedder.version, now)
    return get_found_report(db, report_id), True


def close_found_report(db: Database, report_id: int, user_id: int) -> FoundReport:
    """The finder or shelter closes the report (reunited, or rehomed): no more matching."""
    report = get_found_report(db, report_id)
    if report.reporter_id != user_id:
        raise Forbidden(f"found report {report_id} is not yours")
    with write_transaction(db):
        db.execute("UPDATE found_reports SET status = 'closed', updated = ? WHERE id = ?",
                   [to_db_time(utcnow()), report_id])
    return get_found_report(db, report_id)


def _match_lost_against_found(db: Database, lost_id: int, model_version: str, now: datetime) -> None:
    report = get_lost_report(db, lost_id)
    lost_vectors = query_vectors(db, lost_id, model_version)
    candidates = _near(db, "open found of species since",
                       [report.species, to_db_time(now), to_db_time(report.last_seen - SIGHTING_SLACK)],
                       report.last_seen_point, FOUND_MATCH_RADIUS_M)
    for found_id in candidates:
        _maybe_match(db, lost_id, found_id, lost_vectors, found_vectors(db, found_id, model_version),
                     model_version, now)


def _match_found_against_lost(db: Database, found_id: int, model_version: str, now: datetime) -> None:
    found = get_found_report(db, found_id)
    vectors = found_vectors(db, found_id, model_version)
    candidates = _near(db, "active lost of species before",
                       [found.species, to_db_time(found.found_at + SIGHTING_SLACK)],
                       found.place, FOUND_MATCH_RADIUS_M)
    for lost_id in candidates:
        _maybe_match(db, lost_id, found_id, query_vectors(db, lost_id, model_version), vectors,
                     model_version, now)


def _maybe_match(db: Database, lost_id: int, found_id: int, lost_vectors: np.ndarray,
                 found: np.ndarray, model_version: str, now: datetime) -> None:
    if len(lost_vectors) == 0 or len(found) == 0:
        return
    # The same rule as a camera sighting: the cosine of the two sides' aggregates.
    score = float(scoring.query_vector(lost_vectors) @ scoring.query_vector(found))
    if score >= scoring.threshold_for(model_version):
        consent.record_found_match(db, lost_id, found_id, score, now)
