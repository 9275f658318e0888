"""Images, each checked against the viewer by search_party before a byte is sent:

- /media/sightings/<id>.jpg          a sighting's crop, for its camera's owner;
- /media/matches/<id>/sighting.jpg   a matched sighting's crop, for its camera's owner, and for
                                     the lost pet's owner once the camera owner shared it;
- /media/photos/<id>.jpg             a report photo (consent.photo_image says who may see it).

Every stored image is already a crop with persons blurred and no metadata.  Responses are
private and never cached, so a shared computer keeps nothing after sign-out.
"""

from __future__ import annotations

from flask import Blueprint, Response

from search_party.community import cameras, consent
from web.access import current_user_id, login_required
from web.db import get_db

bp = Blueprint("media", __name__, url_prefix="/media")


def _jpeg(data: bytes) -> Response:
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "private, no-store"})


@bp.get("/sightings/<int:sighting_id>.jpg")
@login_required
def sighting(sighting_id: int) -> Response:
    return _jpeg(cameras.sighting_image(get_db(), sighting_id, current_user_id()))


@bp.get("/matches/<int:match_id>/sighting.jpg")
@login_required
def match_sighting(match_id: int) -> Response:
    return _jpeg(consent.sighting_image(get_db(), match_id, current_user_id()))


@bp.get("/photos/<int:photo_id>.jpg")
@login_required
def photo(photo_id: int) -> Response:
    return _jpeg(consent.photo_image(get_db(), photo_id, current_user_id()))
