"""A printable lost-pet flyer from the report page: the photo, the name, when it was last seen
and how to get in touch through the relay (a link, never an address or a number).  The page is
the owner's; its print stylesheet (static/print.css) leaves only the flyer on paper."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for

from search_party.community import reports
from web.access import current_user_id, login_required
from web.db import get_db

bp = Blueprint("flyer", __name__)


def contact_link(report_id: int) -> str:
    """The relay page for this report, as a full address a reader can type."""
    base = current_app.config.get("PUBLIC_URL") or request.host_url
    return base.rstrip("/") + url_for("relay.contact_lost", report_id=report_id)


@bp.get("/reports/<int:report_id>/flyer")
@login_required
def flyer(report_id: int) -> Any:
    report = reports.owned_lost_report(get_db(), report_id, current_user_id())
    return render_template("flyer/flyer.html", report=report, contact=contact_link(report_id))
