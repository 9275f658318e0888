"""The geofence: which cameras and sightings a search may score (invariant 3 of DESIGN.md).

A search has a centre (the last-seen point), a radius (default 1 km, capped) and a last-seen time.
Candidates are found in two steps:

1. a cheap **prefilter**: a latitude/longitude bounding box that contains the whole fence, also
   across the antimeridian (two longitude ranges) and at the poles (all longitudes). It is meant
   for an indexed SQL query, see ``bbox_where``;
2. the **exact** test: great-circle (haversine) distance <= radius.

Why the box never drops a point inside the fence (prefilter ⊇ exact set), on a sphere with the
fence's angular radius d = radius / R around a centre at latitude phi:

- latitude: a meridian is the shortest path between two latitudes, so every point within d of
  the centre has |lat - phi| <= d;
- longitude, when no pole is inside the fence (phi + d < 90 and phi - d > -90): the widest point
  of the fence is where a meridian touches it. In the right spherical triangle pole–centre–touching
  point (right angle at the touching point, hypotenuse 90 - phi, side d), the sine rule gives
  sin(d) = cos(phi) * sin(dlon), so dlon = asin(sin d / cos phi) bounds every point's longitude
  offset;
- when a pole is inside the fence, every longitude is reached near that pole: all longitudes.

The box is computed for the radius plus ``BBOX_PAD_M`` so that float rounding (asin is very steep
near 1) can never exclude a point at the exact edge; the exact test then removes the extra ring.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from search_party.errors import UserError

# Mean Earth radius (IUGG R1). The sphere is off by up to ~0.5 % from the ellipsoid, far below
# the uncertainty of a "last seen here" pin; every distance in the project uses this one radius.
EARTH_RADIUS_M = 6_371_008.8

DEFAULT_RADIUS_M = 1_000.0
MAX_RADIUS_M = 5_000.0  # abuse limit: a search cannot sweep a whole town's cameras
MIN_RADIUS_M = 50.0  # below a phone's GPS error a fence would miss the camera next door

# A dog filmed a little before the owner's "last seen" time is still this dog: owners round times.
SIGHTING_SLACK = timedelta(minutes=15)

BBOX_PAD_M = 1.0

# Plain decimal degrees only: float() would also take "nan", "inf", "1_0" and non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?", re.ASCII)


class Point(NamedTuple):
    """A validated position in decimal degrees; lon is in [-180, 180)."""

    lat: float
    lon: float


def _parse_number(value: object, what: str, example: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError(f"{what} is missing: give it in decimal degrees, e.g. {example}")
    if isinstance(value, bool):
        raise UserError(f"{what} must be a number in decimal degrees, e.g. {example}, not {value}")
    if isinstance(value, str):
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise UserError(f"{what} {shown!r} is not a number: use decimal degrees, e.g. {example}")
        number = float(text)
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise UserError(
                f"{what} must be a number in decimal degrees, e.g. {example}"
            ) from None
    if not math.isfinite(number):
        raise UserError(f"{what} must be a finite number in decimal degrees, e.g. {example}")
    return number


def parse_point(lat: object, lon: object) -> Point:
    """Validate a latitude/longitude pair from a form, a CLI option or JSON.

    Accepts numbers or plain decimal strings ("51.5074", " -0.1278 "). Raises UserError for a
    missing, non-numeric, NaN, infinite or out-of-range value. Longitude 180 is stored as -180 so
    that each meridian has one spelling.
    """
    lat_f = _parse_number(lat, "latitude", "51.5074")
    lon_f = _parse_number(lon, "longitude", "-0.1278")
    if not -90.0 <= lat_f <= 90.0:
        hint = (
            " — are latitude and longitude swapped?"
            if -90.0 <= lon_f <= 90.0 and -180.0 <= lat_f <= 180.0
            else ""
        )
        raise UserError(f"latitude {lat_f:g} is outside -90..90{hint}")
    if not -180.0 <= lon_f <= 180.0:
        raise UserError(f"longitude {lon_f:g} is outside -180..180")
    if lon_f == 180.0:
        lon_f = -180.0
    return Point(lat_f, lon_f)


def parse_radius_m(value: object = None) -> float:
    """Validate a search radius in metres; None or "" means DEFAULT_RADIUS_M.

    Raises UserError for a non-number or a radius outside MIN_RADIUS_M..MAX_RADIUS_M (the cap is
    refused, not silently clamped, so the owner knows the fence is smaller than asked).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_RADIUS_M
    if isinstance(value, bool):
        raise UserError(f"radius must be a number of metres, e.g. {DEFAULT_RADIUS_M:.0f}")
    try:
        radius = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"radius must be a number of metres, e.g. {DEFAULT_RADIUS_M:.0f}") from None
    if not math.isfinite(radius):
        raise UserError(f"radius must be a finite number of metres, e.g. {DEFAULT_RADIUS_M:.0f}")
    if radius > MAX_RADIUS_M:
        raise UserError(f"radius {radius:g} m is over the {MAX_RADIUS_M:.0f} m cap: choose less")
    if radius < MIN_RADIUS_M:
        raise UserError(f"radius {radius:g} m is below the {MIN_RADIUS_M:.0f} m minimum: choose more")
    return radius


def haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray:
    """Great-circle distance in metres, element-wise with numpy broadcasting.

    The atan2 form keeps full precision for short distances, across the antimeridian (only the
    sine of half the longitude difference enters) and near the poles (cos(lat) -> 0 is harmless).
    """
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(np.subtract(lon2, lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    a = np.clip(a, 0.0, 1.0)
    return 2 * EARTH_RADIUS_M * np.arctan2(np.sqrt(a), np.sqrt(1 - a))


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance between two points in metres."""
    return float(haversine_m(a.lat, a.lon, b.lat, b.lon))


def destination_point(start: Point, bearing_deg: float, distance: float) -> Point:
    """The point reached from start along a great circle (bearing from north, clockwise).

    Computed with 3-D unit vectors, which stay precise at the poles, where asin(sin lat) does not.
    At a pole, north means along the start's meridian.
    """
    phi, lam = math.radians(start.lat), math.radians(start.lon)
    theta, delta = math.radians(bearing_deg), distance / EARTH_RADIUS_M
    here = (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))
    north = (-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi))
    east = (-math.sin(lam), math.cos(lam), 0.0)
    x, y, z = (
        math.cos(delta) * h + math.sin(delta) * (math.cos(theta) * n + math.sin(theta) * e)
        for h, n, e in zip(here, north, east)
    )
    lon = math.degrees(math.atan2(y, x))
    return Point(math.degrees(math.atan2(z, math.hypot(x, y))), -180.0 if lon == 180.0 else lon)


@dataclass(frozen=True)
class BoundingBox:
    """Latitude range and one or two inclusive longitude ranges that contain a whole fence."""

    min_lat: float
    max_lat: float
    lon_ranges: tuple[tuple[float, float], ...]

    def contains(self, lats: ArrayLike, lons: ArrayLike) -> np.ndarray:
        """Boolean mask of the points inside the box (the prefilter)."""
        lats, lons = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        inside_lon = np.zeros(np.broadcast(lats, lons).shape, dtype=bool)
        for lo, hi in self.lon_ranges:
            inside_lon |= (lons >= lo) & (lons <= hi)
        return (lats >= self.min_lat) & (lats <= self.max_lat) & inside_lon

    def sql_params(self) -> tuple[float, float, float, float, float, float]:
        """Parameters for ``bbox_where()``: min_lat, max_lat, lon_lo1, lon_hi1, lon_lo2, lon_hi2.

        Always two longitude ranges so the SQL has one fixed shape; a box that does not cross the
        antimeridian repeats its single range.
        """
        (lo1, hi1), (lo2, hi2) = (self.lon_ranges * 2)[:2]
        return (self.min_lat, self.max_lat, lo1, hi1, lo2, hi2)


def bounding_box(center: Point, radius_m: float, reach_m: float = 0.0) -> BoundingBox:
    """The prefilter box for a fence; see the module docstring for why it contains the fence.

    The radius is checked against the cap here too, so a query built from the box is capped.
    ``reach_m`` widens the box beyond the radius, for rows whose stored point may lie that far
    from the point the fence is decided on (a camera and the centre of its coarse area).
    """
    radius_m = parse_radius_m(radius_m)
    if not 0.0 <= reach_m <= MAX_RADIUS_M:
        raise ValueError(f"reach {reach_m} m is outside 0..{MAX_RADIUS_M} m")
    delta = (radius_m + reach_m + BBOX_PAD_M) / EARTH_RADIUS_M
    delta_deg = math.degrees(delta)
    min_lat, max_lat = center.lat - delta_deg, center.lat + delta_deg
    if max_lat >= 90.0 or min_lat <= -90.0:
        return BoundingBox(max(min_lat, -90.0), min(max_lat, 90.0), ((-180.0, 180.0),))
    ratio = math.sin(delta) / math.cos(math.radians(center.lat))
    if ratio >= 1.0:  # rounding at the pole's doorstep: take every longitude
        return BoundingBox(min_lat, max_lat, ((-180.0, 180.0),))
    dlon = math.degrees(math.asin(ratio))
    lo, hi = center.lon - dlon, center.lon + dlon
    # Ranges are inclusive and reach +-180 exactly, so a longitude stored as 180 or -180 matches.
    if lo <= -180.0:
        return BoundingBox(min_lat, max_lat, ((lo + 360.0, 180.0), (-180.0, hi)))
    if hi >= 180.0:
        return BoundingBox(min_lat, max_lat, ((lo, 180.0), (-180.0, hi - 360.0)))
    return BoundingBox(min_lat, max_lat, ((lo, hi),))


def bbox_where(lat_column: str = "lat", lon_column: str = "lon") -> str:
    """SQL condition for the prefilter, to be bound with ``BoundingBox.sql_params()``.

    Returns ``lat BETWEEN ? AND ? AND (lon BETWEEN ? AND ? OR lon BETWEEN ? AND ?)``. With an
    index on the latitude column SQLite scans only the box's latitude band. The rows it returns
    are a superset of the fence: run ``within_mask`` (or ``cameras_within``) on them afterwards.
    """
    for column in (lat_column, lon_column):
        if not _IDENTIFIER.fullmatch(column):
            raise ValueError(f"not a plain SQL column name: {column!r}")
    return (
        f"{lat_column} BETWEEN ? AND ? AND "
        f"({lon_column} BETWEEN ? AND ? OR {lon_column} BETWEEN ? AND ?)"
    )


def within_mask(center: Point, radius_m: float, lats: ArrayLike, lons: ArrayLike) -> np.ndarray:
    """Boolean mask of the points within radius_m of center: prefilter, then exact haversine."""
    radius_m = parse_radius_m(radius_m)
    lats, lons = np.broadcast_arrays(np.asarray(lats, dtype=float), np.asarray(lons, dtype=float))
    mask = bounding_box(center, radius_m).contains(lats, lons).reshape(-1)
    candidates = np.flatnonzero(mask)  # the exact test runs only on the box's few survivors
    flat_lats, flat_lons = lats.reshape(-1)[candidates], lons.reshape(-1)[candidates]
    exact = haversine_m(center.lat, center.lon, flat_lats, flat_lons)
    mask[candidates] = exact <= radius_m
    return mask.reshape(lats.shape)


def cameras_within(
    center: Point, radius_m: float, ids: ArrayLike, lats: ArrayLike, lons: ArrayLike
) -> np.ndarray:
    """The ids of the cameras within radius_m of center, nearest first (ties keep input order).

    ids, lats and lons are parallel 1-D arrays. The radius is validated against the cap.
    """
    ids, lats, lons = np.asarray(ids), np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
    if not (ids.ndim == lats.ndim == lons.ndim == 1 and len(ids) == len(lats) == len(lons)):
        raise ValueError("ids, lats and lons must be 1-D arrays of the same length")
    inside = np.flatnonzero(within_mask(center, radius_m, lats, lons))
    dist = haversine_m(center.lat, center.lon, lats[inside], lons[inside])
    return ids[inside[np.argsort(dist, kind="stable")]]


def earliest_sighting_time(last_seen: datetime, slack: timedelta = SIGHTING_SLACK) -> datetime:
    """The earliest time a sighting may have for a search: last-seen minus the slack.

    Storage can use it directly as ``WHERE end_time >= ?``. Times must be timezone-aware, so a
    phone's local time and a camera's UTC clock compare correctly.
    """
    if last_seen.tzinfo is None or last_seen.utcoffset() is None:
        raise ValueError("last_seen must be timezone-aware")
    if slack < timedelta(0):
        raise ValueError("slack must not be negative")
    return last_seen - slack


def sighting_in_window(
    sighting_time: datetime, last_seen: datetime, slack: timedelta = SIGHTING_SLACK
) -> bool:
    """Whether a sighting may belong to a search: it ended at or after last-seen minus slack.

    Pass the sighting's end time, so a dog filmed across the last-seen moment still counts.
    """
    if sighting_time.tzinfo is None or sighting_time.utcoffset() is None:
        raise ValueError("sighting_time must be timezone-aware")
    return sighting_time >= earliest_sighting_time(last_seen, slack)
