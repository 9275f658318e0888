"""What anyone but a camera's owner may learn of where it is (invariant 3 of DESIGN.md).

Others see a coarse, fixed area: the H3 cell that holds the camera. Everything shown (the cell
id, its centre, its outline, a distance) is computed from the cell id alone, never from the exact
point, so the same camera always yields the identical output and no number of repeated or
overlapping searches can narrow the camera down below its cell. Distances shown to others are
measured to the cell centre, then rounded to 100 m (all that such a figure can honestly claim).
Measuring from the exact point would leak it: "300 m from where Max was last seen", repeated from
many search centres, trilaterates the camera, and rounding alone does not stop that (the tests
pin a camera within 20 m from 400 distances rounded to 100 m).

Resolution 9: hexagons with a ~200 m edge (~0.1 km², ~400 m across). That is the scale the
project's issue asks for: in a suburb (a thousand or more homes per km²) it hides a camera among a
hundred homes or so, and it is still fine enough for a pet owner to know which streets to walk.
Resolution 8 (~530 m edge, ~0.7 km²) is as wide as the default 1 km search itself and would say
little; resolution 10 (~76 m edge) would often single out one house.

Whether a camera lies inside a search's fence is decided on this same public area, by its cell's
centre (``search.matching.fenced_cameras``), never on the exact point: otherwise whether a small
search reached a camera would place it inside its cell, finer than anyone but its owner may know.
``CELL_REACH_M`` is how far a cell's centre can lie from any point in it, by which the fence's
SQL prefilter is widened.

Storage may keep the cell id beside a camera's exact location (``coarse_cell``) and build what it
shows from ``area_of_cell``, without reading the exact point at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import h3

from search_party.search.geofence import Point, distance_m, parse_point

COARSE_RESOLUTION = 9
PUBLIC_DISTANCE_STEP_M = 100
CELL_REACH_M = 250.0  # no point of a coarse cell lies farther than this from its centre


@dataclass(frozen=True)
class CoarseArea:
    """A camera's public area: an H3 cell id, its centre and its outline (for a map)."""

    cell: str
    center: Point
    boundary: tuple[Point, ...]


def coarse_cell(lat: object, lon: object) -> str:
    """The id of the coarse cell holding a point (validated like any user-given point)."""
    point = parse_point(lat, lon)
    return h3.latlng_to_cell(point.lat, point.lon, COARSE_RESOLUTION)


def area_of_cell(cell: str) -> CoarseArea:
    """The public area of a coarse cell: a pure function of the cell id."""
    if not h3.is_valid_cell(cell) or h3.get_resolution(cell) != COARSE_RESOLUTION:
        raise ValueError(f"not an H3 cell at resolution {COARSE_RESOLUTION}: {cell!r}")
    center = Point(*h3.cell_to_latlng(cell))
    boundary = tuple(Point(lat, lon) for lat, lon in h3.cell_to_boundary(cell))
    return CoarseArea(cell, center, boundary)


def coarse_area(lat: object, lon: object) -> CoarseArea:
    """The public area of a camera at (lat, lon); identical for every point in the same cell."""
    return area_of_cell(coarse_cell(lat, lon))


def public_distance_m(from_point: Point, area: CoarseArea) -> int:
    """The distance shown to anyone but the owner: to the cell centre, rounded to 100 m.

    It depends only on from_point and the cell, so it tells nothing of where in the cell the
    camera is. Show it as "about N m"; 0 means the search point is near the cell's centre.
    """
    step = PUBLIC_DISTANCE_STEP_M
    return int(round(distance_m(from_point, area.center) / step)) * step
