"""The contact relay's pages: people write to each other about a report through Search Party and
never see an address, a number or a camera (search_party.community.relay).  Also the inbox of notices
(requests, shared sightings, found matches, new messages), since e-mail only says "look here".

- /messages                      notices and conversations
- /messages/<id>                 one conversation, for its two people only; reply
- /contact/lost/<report id>      write to a lost pet's owner (as the owner allows:
                                 search_party.community.contact_preferences)
- /contact/found/<report id>     write to the finder of a found pet (or the shelter)

JSON under /api/messages, /api/contact and /api/inbox.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length, Optional

from search_party.community import contact_preferences, notifications, relay, reports
from search_party.community.relay import MAX_MESSAGE_CHARS, Conversation, Message
from search_party.errors import NotFound, UserError
from web.access import current_user_id, login_required
from web.db import get_db
from web.jsonio import json_body, json_time
from web.owner import refuse_upload_tokens

bp = Blueprint("relay", __name__)


class MessageForm(FlaskForm):
    body = TextAreaField("Your message", validators=[Optional(), Length(max=MAX_MESSAGE_CHARS)])
    submission_key = HiddenField()


def _fresh_form() -> MessageForm:
    form = MessageForm()
    form.submission_key.data = uuid.uuid4().hex  # a double-tapped Send is one message
    return form


def conversation_json(c: Conversation, viewer_id: int) -> dict[str, Any]:
    return {"id": c.id, "about": c.about, "report_id": c.report_id, "title": c.title,
            "you_are": "owner" if c.owner_id == viewer_id else "contact", "created": json_time(c.created),
            "page": url_for("relay.conversation", conversation_id=c.id)}


def message_json(m: Message) -> dict[str, Any]:
    return {"id": m.id, "from": m.sender_label, "mine": m.mine, "body": m.body, "sent": json_time(m.created)}


def _notice_link(note: notifications.Notification, viewer_id: int) -> str | None:
    """Where a notice leads: the conversation, the consent inbox, or the viewer's own report."""
    if note.conversation_id is not None:
        return url_for("relay.conversation", conversation_id=note.conversation_id)
    if note.kind == "consent_request":
        return url_for("neighbour.requests_page")
    if note.lost_report_id is not None:
        try:
            owner = reports.get_lost_report(get_db(), note.lost_report_id).owner_id
        except NotFound:
            return None
        if owner == viewer_id:
            return url_for("owner.report", report_id=note.lost_report_id)
        return url_for("owner.reports_page")
    return None


@bp.before_request
def no_tokens() -> Any:
    return refuse_upload_tokens()


@bp.get("/messages")
@login_required
def inbox() -> Any:
    uid = current_user_id()
    db = get_db()
    notes = notifications.inbox(db, uid, limit=50)
    page = render_template("relay/inbox.html", notes=[(n, _notice_link(n, uid)) for n in notes],
                           conversations=relay.conversations_for(db, uid))
    for note in notes:  # shown now, so read
        if note.read_at is None:
            notifications.mark_read(db, uid, note.id)
    return page


@bp.route("/messages/<int:conversation_id>", methods=["GET", "POST"])
@login_required
def conversation(conversation_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    found = relay.get_conversation(db, conversation_id, uid)
    form = MessageForm()
    error = None
    if form.validate_on_submit():
        try:
            relay.send_message(db, conversation_id, uid, form.body.data or "",
                               submission_key=form.submission_key.data or None)
        except UserError as exc:
            error = str(exc)
        else:
            return redirect(url_for("relay.conversation", conversation_id=conversation_id))
    elif request.method == "POST":
        error = "This form has expired; reload the page and send it again."
    fresh = _fresh_form() if error is None else form
    status = 400 if error else 200
    return render_template("relay/conversation.html", conversation=found, form=fresh, error=error,
                           messages=relay.read_messages(db, conversation_id, uid)), status


def _start(kind: str, report_id: int) -> Conversation:
    db = get_db()
    uid = current_user_id()
    if kind == "lost":
        return contact_preferences.contact_owner(db, uid, report_id)
    return relay.start_conversation(db, uid, found_report_id=report_id)


def _contact(kind: str, report_id: int) -> Any:
    db = get_db()
    uid = current_user_id()
    if kind == "lost":
        lost = reports.get_lost_report(db, report_id)
        if lost.owner_id == uid:
            raise UserError("this is your own report; others write to you through it")
        if not contact_preferences.may_write(db, report_id, uid):
            contact_preferences.contact_owner(db, uid, report_id)  # raises Forbidden, saying why
        who, about = f"{lost.pet_name}'s owner", f"{lost.pet_name}, a lost {lost.species}"
    else:
        found = reports.get_found_report(db, report_id)
        if found.reporter_id == uid:
            raise UserError("this is your own report; others write to you through it")
        who = "the shelter" if found.source == "shelter" else "the person who found it"
        about = f"a {found.species} found {found.found_at:%d %b %Y}"
    form = MessageForm()
    error = None
    if form.validate_on_submit():
        try:
            started = _start(kind, report_id)
            if (form.body.data or "").strip():
                relay.send_message(db, started.id, uid, form.body.data,
                                   submission_key=form.submission_key.data or None)
        except UserError as exc:
            error = str(exc)
        else:
            return redirect(url_for("relay.conversation", conversation_id=started.id))
    elif request.method == "POST":
        error = "This form has expired; reload the page and send it again."
    return render_template("relay/contact.html", who=who, about=about,
                           form=_fresh_form() if error is None else form, error=error), 400 if error else 200


@bp.route("/contact/lost/<int:report_id>", methods=["GET", "POST"])
@login_required
def contact_lost(report_id: int) -> Any:
    return _contact("lost", report_id)


@bp.route("/contact/found/<int:report_id>", methods=["GET", "POST"])
@login_required
def contact_found(report_id: int) -> Any:
    return _contact("found", report_id)


# ---------------------------------------------------------------- JSON API


@bp.get("/api/messages")
@login_required
def api_conversations() -> Any:
    uid = current_user_id()
    return jsonify(conversations=[conversation_json(c, uid) for c in relay.conversations_for(get_db(), uid)])


@bp.get("/api/messages/<int:conversation_id>")
@login_required
def api_conversation(conversation_id: int) -> Any:
    uid = current_user_id()
    db = get_db()
    found = relay.get_conversation(db, conversation_id, uid)
    return jsonify(conversation=conversation_json(found, uid),
                   messages=[message_json(m) for m in relay.read_messages(db, conversation_id, uid)])


@bp.post("/api/messages/<int:conversation_id>")
@login_required
def api_send(conversation_id: int) -> Any:
    """``{"body": "...", "submission_key": "..."}``: the same key again returns the first message."""
    data = json_body()
    sent = relay.send_message(get_db(), conversation_id, current_user_id(), str(data.get("body") or ""),
                              submission_key=str(data.get("submission_key") or "") or None)
    return jsonify(message_json(sent)), 201


def _api_contact(kind: str, report_id: int) -> Any:
    data = json_body()
    started = _start(kind, report_id)
    body: dict[str, Any] = {"conversation": conversation_json(started, current_user_id())}
    if str(data.get("body") or "").strip():
        body["message"] = message_json(relay.send_message(
            get_db(), started.id, current_user_id(), str(data["body"]),
            submission_key=str(data.get("submission_key") or "") or None))
    return jsonify(body), 201


@bp.post("/api/contact/lost/<int:report_id>")
@login_required
def api_contact_lost(report_id: int) -> Any:
    return _api_contact("lost", report_id)


@bp.post("/api/contact/found/<int:report_id>")
@login_required
def api_contact_found(report_id: int) -> Any:
    return _api_contact("found", report_id)


@bp.get("/api/inbox")
@login_required
def api_inbox() -> Any:
    uid = current_user_id()
    notes = notifications.inbox(get_db(), uid, unread_only=request.args.get("unread") == "1", limit=200)
    return jsonify(notices=[{"id": n.id, "kind": n.kind, "subject": n.subject, "body": n.body,
                             "created": json_time(n.created), "read": n.read_at is not None,
                             "link": _notice_link(n, uid)} for n in notes])


@bp.post("/api/inbox/<int:notice_id>/read")
@login_required
def api_mark_read(notice_id: int) -> Any:
    notifications.mark_read(get_db(), current_user_id(), notice_id)  # someone else's id changes nothing
    return jsonify(read=True)
