"""A processed clip as JSON, between a remote ingest worker and the server: ``to_wire`` on the
worker, ``from_wire`` on the server, which trusts a worker less than itself and checks everything
before storing it.

Thumbnails travel as base64 JPEG (made by the worker's pipeline, person regions already blurred,
no metadata), vectors as base64 little-endian float32.  The server refuses the whole result
(UserError, nothing stored) unless every sighting is a dog or a cat (no person is ever stored),
every vector has the server's dimension, is finite and of unit length, every vector was made by
the server's own embedder version, and every thumbnail is a JPEG of sane size.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import math
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from search_party.errors import UserError
from search_party.store.clip_results import ClipResult, IngestStats, SightingDraft

LABELS = ("dog", "cat")
MAX_SIGHTINGS = 200  # far above what a motion clip of at most a few minutes holds
MAX_CROPS = 64
MAX_THUMBNAIL_BYTES = 2_000_000
MAX_THUMBNAIL_SIDE = 4096
UNIT_TOLERANCE = 1e-3


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def to_wire(result: ClipResult) -> dict[str, Any]:
    """The worker's side: a ClipResult as JSON-ready data."""
    return {
        "start_time": result.start_time.isoformat() if result.start_time else None,
        "start_source": result.start_source,
        "stats": dataclasses.asdict(result.stats),
        "sightings": [{
            "label": d.label, "p_dog": float(d.p_dog),
            "first_time": d.first_time.isoformat(), "last_time": d.last_time.isoformat(),
            "box": [float(v) for v in d.box], "score": float(d.score),
            "thumbnail_jpeg": _b64(bytes(d.thumbnail_jpeg)),
            "vector": _b64(np.asarray(d.vector, dtype="<f4").tobytes()),
            "crop_vectors": _b64(np.asarray(d.crop_vectors, dtype="<f4").tobytes()),
            "model_version": d.model_version,
        } for d in result.sightings],
    }


# ---------------------------------------------------------------- the server's checks


def _bad(where: str, what: str) -> UserError:
    return UserError(f"refused the worker's result: {where}: {what}; nothing was stored")


def _number(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(where, f"{value!r} is not a finite number")
    if not low <= value <= high:
        raise _bad(where, f"{value!r} is outside {low}..{high}")
    return float(value)


def _time(value: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise _bad(where, f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _bad(where, f"{value!r} has no UTC offset")
    return moment


def _bytes(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise _bad(where, "not base64") from None


def _vectors(value: Any, where: str, dim: int) -> np.ndarray:
    """(n, dim) float32 rows, each finite and of unit length."""
    raw = _bytes(value, where)
    if not raw or len(raw) % (4 * dim):
        raise _bad(where, f"{len(raw)} bytes are not whole vectors of {dim} float32 (the server's dimension)")
    rows = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(-1, dim)
    if not np.isfinite(rows).all():
        raise _bad(where, "a vector holds NaN or infinity")
    norms = np.linalg.norm(rows, axis=1)
    if np.abs(norms - 1.0).max() > UNIT_TOLERANCE:
        raise _bad(where, f"a vector is not of unit length (norm {float(norms[np.argmax(np.abs(norms - 1))]):.4f})")
    return rows


def _jpeg(value: Any, where: str) -> bytes:
    data = _bytes(value, where)
    if len(data) > MAX_THUMBNAIL_BYTES:
        raise _bad(where, f"{len(data)} bytes is more than a thumbnail")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG" or max(image.size) > MAX_THUMBNAIL_SIDE:
                raise _bad(where, f"not a JPEG thumbnail ({image.format}, {image.size})")
            image.verify()
    except (OSError, SyntaxError):
        raise _bad(where, "not a readable JPEG") from None
    return data


def _sighting(item: Any, where: str, dim: int, version: str) -> SightingDraft:
    if not isinstance(item, dict):
        raise _bad(where, "not an object")
    label = item.get("label")
    if label not in LABELS:  # invariant 1: only dogs and cats are ever stored
        raise _bad(where, f"label {label!r} is not one of {', '.join(LABELS)}")
    if item.get("model_version") != version:
        raise _bad(where, f"made by embedder {item.get('model_version')!r}, but this server's is {version!r}; "
                          "give the worker the server's models")
    box = item.get("box")
    if not isinstance(box, list) or len(box) != 4:
        raise _bad(where, "box is not four numbers")
    x1, y1, x2, y2 = (_number(v, f"{where} box", 0) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise _bad(where, "box is empty")
    first = _time(item.get("first_time"), f"{where} first_time")
    last = _time(item.get("last_time"), f"{where} last_time")
    if last < first:
        raise _bad(where, "last_time is before first_time")
    vector = _vectors(item.get("vector"), f"{where} vector", dim)
    if len(vector) != 1:
        raise _bad(where, "vector is not exactly one vector")
    crops = _vectors(item.get("crop_vectors"), f"{where} crop_vectors", dim)
    if len(crops) > MAX_CROPS:
        raise _bad(where, f"{len(crops)} crop vectors is more than {MAX_CROPS}")
    return SightingDraft(
        label=label, p_dog=_number(item.get("p_dog"), f"{where} p_dog", 0, 1), first_time=first, last_time=last,
        box=(x1, y1, x2, y2), score=_number(item.get("score"), f"{where} score", 0, 1),
        thumbnail_jpeg=_jpeg(item.get("thumbnail_jpeg"), f"{where} thumbnail"), vector=vector[0],
        crop_vectors=crops, model_version=version)


def _stats(value: Any) -> IngestStats:
    fields = {f.name for f in dataclasses.fields(IngestStats)}
    if not isinstance(value, dict) or not set(value) <= fields:
        raise _bad("stats", "not the worker's timing record")
    try:
        return IngestStats(**value)
    except TypeError as exc:
        raise _bad("stats", str(exc)) from None


def from_wire(data: Any, *, dim: int, version: str) -> ClipResult:
    """The server's side: a worker's JSON back into a ClipResult, every part checked (UserError)."""
    if not isinstance(data, dict) or not isinstance(data.get("sightings"), list):
        raise _bad("body", "no list of sightings")
    if len(data["sightings"]) > MAX_SIGHTINGS:
        raise _bad("body", f"{len(data['sightings'])} sightings is more than {MAX_SIGHTINGS}")
    sightings = [_sighting(item, f"sighting {n}", dim, version) for n, item in enumerate(data["sightings"])]
    start = data.get("start_time")
    source = data.get("start_source") or ""
    if not isinstance(source, str) or len(source) > 40:
        raise _bad("start_source", "not a short name")
    return ClipResult(sightings, _stats(data.get("stats")),
                      start_time=_time(start, "start_time") if start is not None else None, start_source=source)
