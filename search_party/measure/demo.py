"""`search-party demo`: a small neighbourhood seeded from the committed fixture, so a newcomer sees
a real match in the first minute.

Everything runs through the real domain with the real models: accounts, cameras placed and opted
in, sightings, a lost report whose photo is searched against them, a consent request, a share, a
shelter intake matched with the report.  The only shortcut is the footage: the fixture holds no
camera clip with a dog (see ../shared/data/MANIFEST.md), so each camera's "clip" is the MPDD
crops of one fixture dog's sequence (real frames cut from street video), embedded, aggregated
and thumbnailed exactly as ingest does and stored through the same one-transaction save.

The neighbourhood (around a last-seen point by Westminster Bridge, London):
- Sam's "front gate" camera, 200 m away, opted in: filmed dog 182 (sequence 4) and dog 096;
- Kim's "back yard" camera, 600 m away, opted in: filmed dog 182 again (sequence 5) and dog 131;
  Kim's "porch" camera, right beside the last-seen point, never opted in: never searched;
- Alex reports Rex (dog 182) lost with a photo from another sequence (3): the search asks Sam and
  Kim; Sam has shared, Kim's request waits in Kim's inbox;
- Riverside Dog Rescue (approved by the admin) took in a dog: dog 182 again (sequence 2), which
  matches Rex's report, so Alex is told.

Its password is published (README), so the demo is for a local trial only: it seeds only a data
folder that holds no other account (``seed``), its admin has no password at all (nobody can sign
in as it), and `search-party serve` refuses to put a data folder holding the demo's accounts on
anything but a loopback address without a proxy (web/serve.py, ``holds_demo_accounts``).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from embeddings.images import load_rgb
from embeddings.redact import thumbnail_jpeg
from embeddings.vectors import aggregate
from search_party.community import accounts, cameras, consent, report_submission, reports
from search_party.config import PROJECT_ROOT, Settings
from search_party.errors import UserError
from search_party.search import scoring
from search_party.search.geofence import Point, destination_point
from search_party.store import storage
from search_party.store.clip_results import ClipResult, IngestStats, SightingDraft
from search_party.store.db import utcnow
from search_party.vision import Models, load_models

FIXTURE_MPDD = PROJECT_ROOT / "tests" / "fixtures" / "reid" / "mpdd"
PASSWORD = "search party demo"
LAST_SEEN = Point(51.5007, -0.1246)
OWNER_PHOTO = "182/train__182_c4s3_2.jpg"
INTAKE_PHOTO = "182/train__182_c5s2_8.jpg"
CLAIM = "demo:0:seed"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: str
    who: str
    signs_in: bool = True  # with PASSWORD; the admin has no password


ACCOUNTS = (
    DemoAccount("alex@demo.example", "resident", "pet owner: Rex is lost; one sighting shared, a shelter match"),
    DemoAccount("sam@demo.example", "resident", "neighbour: 'front gate' camera, shared a sighting of Rex"),
    DemoAccount("kim@demo.example", "resident", "neighbour: a request about Rex is waiting; 'porch' never opted in"),
    DemoAccount("desk@riverside-rescue.example", "shelter", "approved shelter: took in a dog that looks like Rex"),
    DemoAccount("admin@demo.example", "admin", "admin: approved the shelter; has no password", signs_in=False),
)
DEMO_EMAILS = tuple(a.email for a in ACCOUNTS)


def holds_demo_accounts(db: Database) -> bool:
    """Whether the database holds any of the demo's accounts (whose password is published)."""
    marks = ", ".join("?" * len(DEMO_EMAILS))
    return db.execute(f"SELECT count(*) FROM users WHERE email IN ({marks})", DEMO_EMAILS).fetchone()[0] > 0


def _refuse_real_accounts(db: Database) -> None:
    marks = ", ".join("?" * len(DEMO_EMAILS))
    others = db.execute(f"SELECT count(*) FROM users WHERE email NOT IN ({marks})", DEMO_EMAILS).fetchone()[0]
    if others:
        raise UserError(f"this data folder holds {others} account(s) that are not the demo's; the demo (whose "
                        "password is published) is only seeded into a data folder of its own: set "
                        "SEARCH_PARTY_DATA_DIR to an empty folder")


@dataclass(frozen=True)
class DemoResult:
    created: bool  # False when the demo was already seeded (nothing changed)
    report_id: int
    sightings_compared: int
    requests_sent: int
    accounts: tuple[DemoAccount, ...] = ACCOUNTS


def _fixture_sequence(identity: str, sequence: int) -> list[Path]:
    if not FIXTURE_MPDD.is_dir():
        raise UserError(f"the demo needs the committed fixture in {FIXTURE_MPDD}; run it from a clone "
                        "of the project")
    with (FIXTURE_MPDD / "labels.csv").open(newline="") as fh:
        return [FIXTURE_MPDD / r["path"] for r in csv.DictReader(fh)
                if r["identity"] == identity and int(r["s"]) == sequence]


def _draft(models: Models, identity: str, sequence: int, filmed: datetime) -> SightingDraft:
    """One sighting of a fixture dog's sequence, made as ingest makes one from a track's crops."""
    crops = [load_rgb(p) for p in _fixture_sequence(identity, sequence)]
    vectors = models.embedder.predict(crops)
    best = max(crops, key=lambda c: c.shape[0] * c.shape[1])
    return SightingDraft(label="dog", p_dog=models.species.of_animal(crops), first_time=filmed,
                         last_time=filmed + timedelta(seconds=4 + len(crops)),
                         box=(0.0, 0.0, float(best.shape[1]), float(best.shape[0])), score=0.9,
                         thumbnail_jpeg=thumbnail_jpeg(best, models.detector.person_boxes(best)),
                         vector=aggregate(vectors), crop_vectors=vectors, model_version=models.embedder.version)


def _film(db: Database, models: Models, camera_id: int, name: str,
          dogs: list[tuple[str, int, datetime]]) -> None:
    drafts = [_draft(models, identity, sequence, filmed) for identity, sequence, filmed in dogs]
    sha = hashlib.sha256(f"demo:{camera_id}:{name}".encode()).hexdigest()
    clip, _ = storage.create_clip(db, camera_id, sha, name, 1, start_time=drafts[0].first_time)
    storage.claim_clip(db, clip.id, CLAIM)
    stats = IngestStats(clip_seconds=60.0, wall_seconds=0.0, frames_decoded=0, frames_motion_checked=0,
                        frames_detected=0, crops_embedded=sum(len(d.crop_vectors) for d in drafts),
                        ms_per_stage={}, width=0, height=0, codec="fixture crops")
    storage.save_clip_result(db, clip.id, ClipResult(drafts, stats, drafts[0].first_time, "given"), CLAIM)


def _camera(db: Database, owner_id: int, name: str, bearing: float, metres: float, opt_in: bool) -> int:
    place = destination_point(LAST_SEEN, bearing, metres)
    camera = cameras.register_camera(db, owner_id, lat=place.lat, lon=place.lon, name=name)
    if opt_in:
        cameras.opt_in(db, camera.id, owner_id)
    return camera.id


def seed(settings: Settings, db: Database, now: datetime | None = None) -> DemoResult:
    """Seed the demo neighbourhood into ``db`` (see the module notes); does nothing if the demo's
    pet owner already exists.  Refuses a database holding any other account."""
    _refuse_real_accounts(db)
    existing = accounts.find_account(db, ACCOUNTS[0].email)
    if existing is not None:
        lost = reports.list_lost_reports(db, owner_id=existing.id)
        return DemoResult(False, lost[0].id if lost else 0, 0, 0)
    now = now or utcnow()
    models = load_models(settings)
    scoring.threshold_for(models.embedder.version)  # an uncalibrated model fails here, before any write
    alex, sam, kim = (accounts.create_user(db, a.email, PASSWORD, display_name=a.email.split("@")[0].title())
                      for a in ACCOUNTS[:3])
    admin = accounts.create_user(db, ACCOUNTS[4].email, None, role="admin")  # nobody signs in as it
    shelter = accounts.register_shelter(db, ACCOUNTS[3].email, PASSWORD, name="Riverside Dog Rescue",
                                     lat=51.4950, lon=-0.1180, service_radius_m=15_000)
    accounts.approve_shelter(db, shelter.user_id, admin.id)

    gate = _camera(db, sam.id, "front gate", 40, 200, opt_in=True)
    yard = _camera(db, kim.id, "back yard", 70, 600, opt_in=True)
    _camera(db, kim.id, "porch", 200, 60, opt_in=False)
    _film(db, models, gate, "front-gate-0710.mp4", [("182", 4, now - timedelta(minutes=50)),
                                                   ("096", 5, now - timedelta(minutes=35))])
    _film(db, models, yard, "back-yard-0730.mp4", [("182", 5, now - timedelta(minutes=25)),
                                                  ("131", 4, now - timedelta(minutes=20))])

    report, run = report_submission.submit_lost(
        settings, db, alex.id, photos=[(FIXTURE_MPDD / OWNER_PHOTO).read_bytes()], pet_name="Rex",
        species="dog", lat=LAST_SEEN.lat, lon=LAST_SEEN.lon, last_seen=now - timedelta(hours=2),
        description="Black and tan, red collar, friendly", submission_key="demo")
    for request in consent.requests_for_owner(db, sam.id):
        consent.answer(db, request.match_id, sam.id, True)
    report_submission.submit_intakes(settings, db, shelter.user_id,
                                     [("intake-0815.jpg", (FIXTURE_MPDD / INTAKE_PHOTO).read_bytes())],
                                     species="dog", found_at=now - timedelta(minutes=10))
    return DemoResult(True, report.id, run.sightings_compared if run else 0, len(run.asked) if run else 0)
