"""JSON in and out for the web layer's API routes: the request body as a dict, and times as
ISO 8601 strings.  Shared by web/api.py, web/owner.py, web/relay.py and the other report areas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from search_party.errors import UserError


def json_body() -> dict[str, Any]:
    """The request's JSON object, or its form fields when it is not JSON."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise UserError("the request body is not a JSON object")
        return data
    return request.form.to_dict()


def json_time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
