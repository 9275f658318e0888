"""Location privacy (invariant 3 of DESIGN.md, issue 6): anyone but a camera's owner sees only a
coarse, fixed cell, and no number of searches around a camera narrows it down below that cell."""

from __future__ import annotations

import math
import os

import h3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_party.errors import UserError
from search_party.search.coarse_location import (
    COARSE_RESOLUTION,
    PUBLIC_DISTANCE_STEP_M,
    CoarseArea,
    area_of_cell,
    coarse_area,
    coarse_cell,
    public_distance_m,
)
from search_party.search.geofence import (
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    Point,
    cameras_within,
    destination_point,
    distance_m,
    haversine_m,
    parse_point,
)

# A suburban street, a camera on the antimeridian (Taveuni, Fiji, which 180° crosses) and one in
# the high Arctic (Longyearbyen), where cells and longitudes are most distorted.
CAMERAS = {
    "suburb": Point(51.4416, -0.0553),
    "antimeridian": Point(-16.8231, 179.9994),
    "arctic": Point(78.2232, 15.6267),
}

# SEARCH_PARTY_PROPERTY_EXAMPLES=2000 runs a deeper search than CI's quick one.
PROPERTY = settings(
    max_examples=int(os.environ.get("SEARCH_PARTY_PROPERTY_EXAMPLES", 100)),
    deadline=None,
    database=None,
)
points = st.one_of(
    st.tuples(st.floats(-89.9, 89.9), st.floats(-180, 180)),
    st.tuples(st.floats(-89.9, 89.9), st.floats(179.99, 180)),  # the antimeridian
    st.tuples(st.floats(89.0, 90), st.floats(-180, 180)),  # the North Pole
    st.tuples(st.floats(-90, -89.0), st.floats(-180, 180)),  # the South Pole
).map(lambda ll: parse_point(*ll))


def unwrap(lon: float, around: float) -> float:
    """A longitude shifted by whole turns to lie within 180 degrees of another."""
    return (lon - around + 180.0) % 360.0 - 180.0 + around


def inside_polygon(point: Point, area: CoarseArea) -> bool:
    """Ray casting in (unwrapped) degrees: fine for a 200 m cell away from the poles."""
    x, y = unwrap(point.lon, area.center.lon), point.lat
    ring = [(unwrap(p.lon, area.center.lon), p.lat) for p in area.boundary]
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def points_in_cell(cell: str, rng: np.random.Generator, count: int) -> list[Point]:
    """Positions spread over a whole cell, into its corners: every place its camera could be."""
    area = area_of_cell(cell)
    reach = max(distance_m(area.center, corner) for corner in area.boundary)
    c = area.center
    near_corners = (  # 97 % of the way to each corner; a 200 m cell is flat enough for this
        parse_point(
            c.lat + 0.97 * (corner.lat - c.lat),
            unwrap(c.lon + 0.97 * (unwrap(corner.lon, c.lon) - c.lon), 0.0),
        )
        for corner in area.boundary
    )
    found = [p for p in near_corners if coarse_cell(*p) == cell]
    while len(found) < count:
        # sqrt spreads the draws evenly over the disc rather than bunching them at the centre
        p = destination_point(area.center, rng.uniform(0, 360), reach * math.sqrt(rng.uniform()))
        if coarse_cell(p.lat, p.lon) == cell:
            found.append(p)
    return found


# --- the cell ---------------------------------------------------------------------------------


def test_cells_have_edges_of_100_to_250_m_wherever_the_camera_is():
    assert h3.average_hexagon_edge_length(COARSE_RESOLUTION, "m") == pytest.approx(200, abs=10)
    for camera in CAMERAS.values():
        area = coarse_area(*camera)
        ring = area.boundary
        edges = [distance_m(a, b) for a, b in zip(ring, ring[1:] + ring[:1])]
        assert min(edges) > 100 and max(edges) < 250, (camera, edges)


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_camera_lies_in_the_area_shown(name):
    camera = CAMERAS[name]
    area = coarse_area(*camera)
    assert inside_polygon(camera, area)
    assert distance_m(camera, area.center) < 250
    assert h3.get_resolution(area.cell) == COARSE_RESOLUTION


def test_same_camera_always_yields_the_identical_area():
    camera = CAMERAS["suburb"]
    first = coarse_area(*camera)
    for lat, lon in [camera, (str(camera.lat), str(camera.lon)), (f" {camera.lat} ", camera.lon)]:
        for _ in range(20):
            assert coarse_area(lat, lon) == first
    assert first == area_of_cell(first.cell)


@PROPERTY
@given(points, st.integers(0, 2**32 - 1))
def test_area_is_a_pure_function_of_the_cell(camera, seed):
    cell = coarse_cell(*camera)
    area = coarse_area(*camera)
    assert area == area_of_cell(cell)
    # Any other position in the cell gives the identical area: nothing finer is in the output.
    for other in points_in_cell(cell, np.random.default_rng(seed), 5):
        assert coarse_area(*other) == area
    # Across the cell's edge the area changes: the output does say which cell.
    neighbour = next(iter(h3.grid_ring(cell, 1)))
    assert area_of_cell(neighbour) != area


def test_area_of_cell_refuses_what_is_not_a_coarse_cell():
    with pytest.raises(ValueError, match="not an H3 cell"):
        area_of_cell("not-a-cell")  # garbage from a corrupted row
    coarser = h3.latlng_to_cell(*CAMERAS["suburb"], COARSE_RESOLUTION - 1)
    with pytest.raises(ValueError, match="resolution 9"):
        area_of_cell(coarser)  # a cell of the wrong size
    finer = h3.latlng_to_cell(*CAMERAS["suburb"], COARSE_RESOLUTION + 1)
    with pytest.raises(ValueError, match="resolution 9"):
        area_of_cell(finer)


def test_coarse_area_refuses_bad_coordinates():
    with pytest.raises(UserError, match="finite"):
        coarse_area(float("nan"), 0.0)  # a NaN latitude
    with pytest.raises(UserError, match="outside -180..180"):
        coarse_area(10.0, 200.0)  # an out-of-range longitude


# --- distances shown to others ----------------------------------------------------------------


def test_public_distance_is_from_the_cell_centre_rounded_to_100_m():
    area = coarse_area(*CAMERAS["suburb"])
    assert PUBLIC_DISTANCE_STEP_M == 100
    assert public_distance_m(area.center, area) == 0
    assert public_distance_m(destination_point(area.center, 0, 1_234), area) == 1_200
    assert public_distance_m(destination_point(area.center, 90, 1_251), area) == 1_300
    assert public_distance_m(destination_point(area.center, 200, 49), area) == 0
    # Not from the camera: a search 5 m from the camera is told how far the cell centre is.
    at_camera = destination_point(CAMERAS["suburb"], 0, 5)
    expected = round(distance_m(at_camera, area.center) / 100) * 100
    assert public_distance_m(at_camera, area) == expected


# --- the triangulation attack -----------------------------------------------------------------


def searches_around(camera: Point, rng: np.random.Generator, count: int) -> list[Point]:
    """Search centres an attacker might place: every one's fence holds the camera."""
    centers = []
    for _ in range(count):
        radius = rng.uniform(MIN_RADIUS_M, MAX_RADIUS_M)
        center = destination_point(camera, rng.uniform(0, 360), rng.uniform(0, radius))
        assert cameras_within(center, radius, ["cam"], [camera.lat], [camera.lon]).tolist() == [
            "cam"
        ]
        centers.append(center)
    return centers


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_many_searches_never_narrow_a_camera_below_its_cell(name):
    """An attacker runs 400 searches around one camera and collects everything shown to a
    non-owner: the area and the distance. Every position in the camera's cell produces exactly
    the same record, so the attacker's set of possible positions is still the whole cell."""
    camera = CAMERAS[name]
    rng = np.random.default_rng(7)
    centers = searches_around(camera, rng, 400)
    decoys = points_in_cell(coarse_cell(*camera), rng, 300)

    def shown(position: Point) -> list[tuple[CoarseArea, int]]:
        area = coarse_area(*position)
        return [(area, public_distance_m(c, area)) for c in centers]

    record = shown(camera)
    assert len({area for area, _ in record}) == 1  # one fixed area, every time
    consistent = [d for d in decoys if shown(d) == record]
    assert len(consistent) == len(decoys), "some searches told positions in the cell apart"
    # The positions the attacker cannot rule out span the whole cell, corner to corner.
    ring = record[0][0].boundary
    diameter = max(distance_m(a, b) for a in ring for b in ring)
    spread = max(distance_m(a, b) for a in consistent for b in consistent)
    assert spread > 0.9 * diameter

    # Controls: the attack works if distances come from the exact point, even rounded to 100 m.
    lat = np.array([d.lat for d in decoys])
    lon = np.array([d.lon for d in decoys])
    for step in (1, PUBLIC_DISTANCE_STEP_M):
        told = np.round(haversine_m(camera.lat, camera.lon, *np.array(centers).T) / step)
        fits = np.ones(len(decoys), dtype=bool)
        for (c_lat, c_lon), t in zip(centers, told):
            fits &= np.round(haversine_m(c_lat, c_lon, lat, lon) / step) == t
        near = haversine_m(camera.lat, camera.lon, lat[fits], lon[fits])
        assert fits.sum() < 0.05 * len(decoys) and np.all(near < 20), (step, fits.sum(), near)
