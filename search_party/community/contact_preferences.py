"""Who may write to a lost pet's owner through the contact relay: the owner's choice.

- ``anyone``: anyone signed in, e.g. someone who read the printed flyer (its link opens the relay);
- ``matched``: only people Search Party has put in touch with the report: a camera owner who
  shared a sighting of it, a finder whose found report matches it, an approved shelter whose
  service area holds it.

Either way nobody sees an address or a number (search_party.community.relay), and a conversation that has
started may go on.  A report without a stored choice is open to ``anyone``.
"""

from __future__ import annotations

from sqlite_utils import Database

from search_party.community import relay
from search_party.community.accounts import approved_shelter
from search_party.community.reports import get_lost_report, owned_lost_report
from search_party.errors import Forbidden, UserError
from search_party.search.geofence import distance_m
from search_party.store.db import write_transaction

OPEN_TO = {
    "anyone": "Anyone signed in to Search Party, e.g. someone who read your flyer",
    "matched": "Only people Search Party matched with the report: a neighbour who shared a sighting, "
               "a finder whose found dog looks like yours, a shelter in the area",
}
DEFAULT = "anyone"


def set_open_to(db: Database, report_id: int, owner_id: int, open_to: str) -> str:
    """The owner chooses who may write to them about this report."""
    if open_to not in OPEN_TO:
        raise UserError(f"contact preference {open_to!r} is not one of {', '.join(OPEN_TO)}")
    owned_lost_report(db, report_id, owner_id)
    with write_transaction(db):
        db.execute("INSERT INTO report_contact (lost_report_id, open_to) VALUES (?, ?) "
                   "ON CONFLICT (lost_report_id) DO UPDATE SET open_to = excluded.open_to",
                   [report_id, open_to])
    return open_to


def open_to(db: Database, report_id: int) -> str:
    row = db.execute("SELECT open_to FROM report_contact WHERE lost_report_id = ?", [report_id]).fetchone()
    return row[0] if row else DEFAULT


def is_matched(db: Database, report_id: int, user_id: int) -> bool:
    """Whether Search Party put ``user_id`` in touch with this lost report (see the module notes)."""
    linked = db.execute(
        "SELECT 1 FROM matches m LEFT JOIN cameras c ON c.id = m.camera_id "
        "LEFT JOIN found_reports f ON f.id = m.found_report_id "
        "WHERE m.lost_report_id = ? AND m.state = 'shared' AND (c.owner_id = ? OR f.reporter_id = ?)",
        [report_id, user_id, user_id]).fetchone()
    if linked:
        return True
    try:
        shelter = approved_shelter(db, user_id)
    except Forbidden:
        return False
    report = get_lost_report(db, report_id)
    return report.status == "active" and distance_m(shelter.location, report.last_seen_point) \
        <= shelter.service_radius_m


def _existing(db: Database, report_id: int, user_id: int) -> bool:
    return db.execute("SELECT 1 FROM conversations WHERE lost_report_id = ? AND contact_id = ?",
                      [report_id, user_id]).fetchone() is not None


def may_write(db: Database, report_id: int, user_id: int) -> bool:
    """Whether ``user_id`` may start (or go on with) a conversation with the report's owner."""
    report = get_lost_report(db, report_id)
    if report.owner_id == user_id:
        return False
    return (open_to(db, report_id) == "anyone" or _existing(db, report_id, user_id)
            or is_matched(db, report_id, user_id))


def contact_owner(db: Database, user_id: int, report_id: int) -> relay.Conversation:
    """Open (or return) ``user_id``'s conversation with a lost pet's owner, if the owner's
    preference allows it (Forbidden otherwise, saying why)."""
    report = get_lost_report(db, report_id)
    if report.owner_id != user_id and not may_write(db, report_id, user_id):
        raise Forbidden(f"{report.pet_name}'s owner takes messages only from people Search Party "
                        "matched with the report")
    return relay.start_conversation(db, user_id, lost_report_id=report_id)
