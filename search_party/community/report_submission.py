"""Reports as the web app and the demo submit them: the models loaded once per process, the
report stored, and a new lost report's search run at once.

- ``submit_lost``: create the lost report (photos checked, only the pet embedded), store the
  owner's contact preference, then search the cameras in range (``standing_searches``) with the
  index this process holds (opened once, then only synced), which asks their owners; new
  sightings later are scored by the worker's standing searches.
- ``submit_found``: a found dog, matched at once against active lost reports nearby (both sides
  are told in their inboxes and may write through the relay).
- ``submit_intakes``: a shelter's bulk intake: one found report per photo, at the shelter's
  place; each photo is accepted or refused on its own, saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from search_party.community import contact_preferences, reports, standing_searches
from search_party.community.accounts import approved_shelter
from search_party.community.reports import FoundReport, LostReport
from search_party.community.standing_searches import SearchRun
from search_party.config import Settings
from search_party.errors import ImageError, UserError
from search_party.store.vector_index import VectorIndex
from search_party.vision import load_models


def submit_lost(settings: Settings, db: Database, owner_id: int, *, photos: Sequence[bytes],
                pet_name: str, species: str, lat: object, lon: object, last_seen: datetime,
                radius_m: object = None, days: int = 3, description: str = "",
                open_to: str = contact_preferences.DEFAULT,
                submission_key: str | None = None) -> tuple[LostReport, SearchRun | None]:
    """Report a pet lost and run its first search.  The run is None when the same submission
    was already stored (a double tap): nothing new happens then."""
    if open_to not in contact_preferences.OPEN_TO:
        raise UserError(f"contact preference {open_to!r} is not one of "
                        f"{', '.join(contact_preferences.OPEN_TO)}")
    models = load_models(settings)
    report, created = reports.create_lost_report(
        db, owner_id, pet_name=pet_name, species=species, photos=list(photos), lat=lat, lon=lon,
        last_seen=last_seen, radius_m=radius_m, expires_in=timedelta(days=days),
        description=description, submission_key=submission_key,
        models=models)
    if not created:
        return report, None
    contact_preferences.set_open_to(db, report.id, owner_id, open_to)
    index = VectorIndex.for_process(db, settings.index_path, models.embedder.version, models.embedder.dim)
    return report, standing_searches.search_report(db, report.id, index)


def submit_found(settings: Settings, db: Database, reporter_id: int, *, photos: Sequence[bytes],
                 species: str, lat: object, lon: object, found_at: datetime, description: str = "",
                 as_shelter: bool = False, submission_key: str | None = None) -> tuple[FoundReport, bool]:
    """Post a found pet; returns (report, created) like ``reports.create_found_report``."""
    models = load_models(settings)
    return reports.create_found_report(
        db, reporter_id, species=species, photos=list(photos), lat=lat, lon=lon, found_at=found_at,
        description=description, as_shelter=as_shelter, submission_key=submission_key,
        models=models)


@dataclass(frozen=True)
class IntakeResult:
    filename: str
    report: FoundReport | None
    error: str | None  # why this photo was refused (then nothing was stored for it)


def submit_intakes(settings: Settings, db: Database, shelter_id: int,
                   photos: Sequence[tuple[str, bytes]], *, species: str, found_at: datetime,
                   description: str = "") -> list[IntakeResult]:
    """One intake (a shelter's found report at its own place) per photo, each matched against
    lost reports at once.  Forbidden unless the shelter is approved."""
    shelter = approved_shelter(db, shelter_id)
    if not photos:
        raise UserError("choose one or more photos: each photo is one animal taken in")
    results = []
    for filename, data in photos:
        try:
            report, _ = submit_found(settings, db, shelter_id, photos=[data], species=species,
                                     lat=shelter.location.lat, lon=shelter.location.lon,
                                     found_at=found_at, description=description, as_shelter=True)
        except (UserError, ImageError) as exc:
            results.append(IntakeResult(filename, None, str(exc).replace("photo 1", "this photo")))
        else:
            results.append(IntakeResult(filename, report, None))
    return results
