"""The contact relay: people write to each other through Search Party, never seeing an address.

A conversation is about one report (a lost or a found one) and joins the report's owner with one
other person: a neighbour who saw the dog, a finder, a shelter, a camera owner who shared.  Each
side sees the other only by a label ("Max's owner", the shelter's name, a chosen display name or
"a neighbour") — never an e-mail address, a phone number, or a camera.  Each message lands in the
recipient's inbox (and e-mail, which says only that a message is waiting).

Sending is idempotent per submission key: a form posted twice is one message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from search_party.community import notifications
from search_party.community.activity import first_upper
from search_party.errors import Forbidden, NotFound, UserError
from search_party.store.db import from_db_time, insert_row, to_db_time, utcnow, write_transaction

MAX_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class Conversation:
    id: int
    about: str  # 'lost' | 'found'
    report_id: int
    title: str  # e.g. "Max (lost dog)"
    owner_id: int  # the report's owner
    contact_id: int  # the other person
    created: datetime


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    sender_label: str
    mine: bool
    body: str
    created: datetime


def _conversation(db: Database, row: dict) -> Conversation:
    if row["lost_report_id"] is not None:
        name, species = db.execute("SELECT pet_name, species FROM lost_reports WHERE id = ?",
                                   [row["lost_report_id"]]).fetchone()
        about, report_id, title = "lost", row["lost_report_id"], f"{name} (lost {species})"
    else:
        (species,) = db.execute("SELECT species FROM found_reports WHERE id = ?",
                                [row["found_report_id"]]).fetchone()
        about, report_id, title = "found", row["found_report_id"], f"a found {species}"
    return Conversation(row["id"], about, report_id, title, row["owner_id"], row["contact_id"],
                        from_db_time(row["created"]))


def get_conversation(db: Database, conversation_id: int, viewer_id: int) -> Conversation:
    """A conversation the viewer takes part in (anyone else gets Forbidden)."""
    rows = list(db.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
    if not rows or viewer_id not in (rows[0]["owner_id"], rows[0]["contact_id"]):
        raise Forbidden(f"conversation {conversation_id} is not yours")
    return _conversation(db, rows[0])


def start_conversation(db: Database, user_id: int, *, lost_report_id: int | None = None,
                       found_report_id: int | None = None) -> Conversation:
    """Open (or return the existing) conversation between ``user_id`` and a report's owner.
    A lost report must be active, a found report open: ended reports take no new contacts."""
    if (lost_report_id is None) == (found_report_id is None):
        raise ValueError("give exactly one of lost_report_id and found_report_id")
    with write_transaction(db):
        if lost_report_id is not None:
            row = db.execute("SELECT owner_id, status FROM lost_reports WHERE id = ?",
                             [lost_report_id]).fetchone()
            open_status, what = "active", f"lost report {lost_report_id}"
        else:
            row = db.execute("SELECT reporter_id, status FROM found_reports WHERE id = ?",
                             [found_report_id]).fetchone()
            open_status, what = "open", f"found report {found_report_id}"
        if row is None:
            raise NotFound(f"{what} does not exist")
        owner_id, status = row
        if owner_id == user_id:
            raise UserError("this is your own report; others write to you through it")
        column = "lost_report_id" if lost_report_id is not None else "found_report_id"
        report_id = lost_report_id if lost_report_id is not None else found_report_id
        existing = list(db.query(f"SELECT * FROM conversations WHERE {column} = ? AND contact_id = ?",
                                 [report_id, user_id]))
        if existing:
            return _conversation(db, existing[0])
        if status != open_status:
            raise UserError(f"{what} has ended, so it takes no new messages")
        conversation_id = insert_row(db, "conversations", {
            column: report_id, "owner_id": owner_id, "contact_id": user_id,
            "created": to_db_time(utcnow())})
        return _conversation(db, next(db.query("SELECT * FROM conversations WHERE id = ?",
                                               [conversation_id])))


def _label(db: Database, conversation: Conversation, user_id: int) -> str:
    """How ``user_id`` appears to the other side of the conversation."""
    if user_id == conversation.owner_id:
        if conversation.about == "lost":
            (name,) = db.execute("SELECT pet_name FROM lost_reports WHERE id = ?",
                                 [conversation.report_id]).fetchone()
            return f"{name}'s owner"
        return "the finder"
    shelter = db.execute("SELECT name FROM shelters WHERE user_id = ? AND approved_at IS NOT NULL",
                         [user_id]).fetchone()
    if shelter:
        return shelter[0]
    (display_name,) = db.execute("SELECT display_name FROM users WHERE id = ?", [user_id]).fetchone()
    return display_name or "a neighbour"


def send_message(db: Database, conversation_id: int, sender_id: int, body: str,
                 submission_key: str | None = None) -> Message:
    """Send a message; the recipient is told in their inbox.  The same ``submission_key`` from
    the same sender in the same conversation returns the first message instead of a second."""
    text = body.strip() if isinstance(body, str) else ""
    if not text:
        raise UserError("a message cannot be empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise UserError(f"a message may have at most {MAX_MESSAGE_CHARS} characters")
    key = submission_key or uuid.uuid4().hex
    with write_transaction(db):
        conversation = get_conversation(db, conversation_id, sender_id)
        existing = db.execute("SELECT id FROM messages WHERE conversation_id = ? AND sender_id = ? "
                              "AND submission_key = ?", [conversation_id, sender_id, key]).fetchone()
        if existing:
            message_id = existing[0]
        else:
            message_id = insert_row(db, "messages", {
                "conversation_id": conversation_id, "sender_id": sender_id, "body": text,
                "submission_key": key, "created": to_db_time(utcnow()), "read_at": None})
            recipient = (conversation.contact_id if sender_id == conversation.owner_id
                         else conversation.owner_id)
            notifications.notify(
                db, recipient, "message", f"New message about {conversation.title}",
                f"{first_upper(_label(db, conversation, sender_id))} wrote to you about "
                f"{conversation.title}. Read and answer it in Search Party; your address is never "
                "shown to them.", conversation_id=conversation_id)
    return _messages(db, conversation, sender_id, only_id=message_id)[0]


def _messages(db: Database, conversation: Conversation, viewer_id: int,
              only_id: int | None = None) -> list[Message]:
    where, params = "conversation_id = ?", [conversation.id]
    if only_id is not None:
        where, params = "id = ?", [only_id]
    labels: dict[int, str] = {}
    out = []
    for message_id, sender_id, body, created in db.execute(
            f"SELECT id, sender_id, body, created FROM messages WHERE {where} ORDER BY id", params):
        if sender_id not in labels:
            labels[sender_id] = _label(db, conversation, sender_id)
        out.append(Message(message_id, conversation.id, labels[sender_id], sender_id == viewer_id,
                           body, from_db_time(created)))
    return out


def read_messages(db: Database, conversation_id: int, viewer_id: int) -> list[Message]:
    """The conversation's messages, oldest first, for one of its two people; marks the other
    side's messages read."""
    conversation = get_conversation(db, conversation_id, viewer_id)
    with write_transaction(db):
        db.execute("UPDATE messages SET read_at = ? WHERE conversation_id = ? AND sender_id != ? "
                   "AND read_at IS NULL", [to_db_time(utcnow()), conversation_id, viewer_id])
    return _messages(db, conversation, viewer_id)


def conversations_for(db: Database, user_id: int) -> list[Conversation]:
    """Every conversation the user takes part in, newest first."""
    rows = db.query("SELECT * FROM conversations WHERE owner_id = ? OR contact_id = ? ORDER BY id DESC",
                    [user_id, user_id])
    return [_conversation(db, r) for r in rows]
