"""The activity log a camera owner reads: which searches touched their footage, when, and what
came of it.

One entry per event: a search compared some of the camera's sightings ("scored", with how many
and how many were likely matches), a consent request was sent ("asked"), the owner shared or
declined, a request expired unanswered, or the search ended (the dog was found) and its pending
requests were withdrawn.  Entries name the search by its pet's name and species only, never its
owner, and outlive the search itself; deleting the pet owner's account blanks the name.  Only the
camera's owner may read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from search_party.store.db import from_db_time, to_db_time, utcnow

EVENTS = ("scored", "asked", "shared", "declined", "expired", "ended")


@dataclass(frozen=True)
class ActivityEntry:
    id: int
    camera_id: int
    camera_name: str
    lost_report_id: int | None  # None once the search's owner deleted their account
    pet_name: str
    species: str
    event: str
    sightings: int  # how many of the camera's sightings this event concerned
    likely: int  # of those, how many scored as likely matches
    at: datetime

    def describe(self) -> str:
        """One plain sentence for the owner's log page."""
        search = f"the search for {self.pet_name} ({self.species})" if self.pet_name else \
            f"a search for a {self.species} (since deleted)"
        camera = f"camera {self.camera_name!r}" if self.camera_name else f"camera {self.camera_id}"
        if self.event == "scored":
            outcome = (f"{self.likely} likely match{'es' if self.likely != 1 else ''}"
                       if self.likely else "no likely match")
            return (f"{first_upper(search)} compared {self.sightings} sighting"
                    f"{'s' if self.sightings != 1 else ''} from {camera}: {outcome}.")
        return {
            "asked": f"You were asked whether to share a sighting from {camera} with {search}.",
            "shared": f"You shared a sighting from {camera} with {search}.",
            "declined": f"You declined to share a sighting from {camera} with {search}.",
            "expired": f"A request about {camera} expired unanswered when {search} expired.",
            "ended": f"{first_upper(search)} ended (the pet was found); its requests about "
                     f"{camera} were withdrawn.",
        }[self.event]


def first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def record(db: Database, camera_id: int, lost_report_id: int, pet_name: str, species: str,
           event: str, *, sightings: int = 0, likely: int = 0, at: datetime | None = None) -> None:
    """Add one entry, inside the caller's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown activity event {event!r}")
    # Plain SQL: a city-wide search logs hundreds of cameras in its one transaction.
    db.execute("INSERT INTO camera_activity (camera_id, lost_report_id, pet_name, species, event, "
               "sightings, likely, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [camera_id, lost_report_id, pet_name, species, event, sightings, likely,
                to_db_time(at or utcnow())])


def for_owner(db: Database, owner_id: int, *, camera_id: int | None = None,
              limit: int = 500) -> list[ActivityEntry]:
    """The owner's log across their cameras (or one of them), newest first.  Another user's
    camera id yields nothing."""
    extra, params = "", [owner_id]
    if camera_id is not None:
        extra, params = " AND c.id = ?", [owner_id, camera_id]
    rows = db.query(
        "SELECT a.*, c.name AS camera_name FROM camera_activity a JOIN cameras c ON c.id = a.camera_id "
        f"WHERE c.owner_id = ?{extra} ORDER BY a.at DESC, a.id DESC LIMIT ?", [*params, limit])
    return [ActivityEntry(
        id=r["id"], camera_id=r["camera_id"], camera_name=r["camera_name"],
        lost_report_id=r["lost_report_id"], pet_name=r["pet_name"], species=r["species"],
        event=r["event"], sightings=r["sightings"], likely=r["likely"], at=from_db_time(r["at"]),
    ) for r in rows]
