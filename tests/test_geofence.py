"""The geofence: point and radius validation, distances, the bounding-box prefilter, the exact
fence and the time window, including the antimeridian and the poles (invariant 3)."""

from __future__ import annotations

import math
import os
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_party.errors import UserError
from search_party.search.geofence import (
    DEFAULT_RADIUS_M,
    EARTH_RADIUS_M,
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    SIGHTING_SLACK,
    Point,
    bbox_where,
    bounding_box,
    cameras_within,
    destination_point,
    distance_m,
    earliest_sighting_time,
    haversine_m,
    parse_point,
    parse_radius_m,
    sighting_in_window,
    within_mask,
)

# SEARCH_PARTY_PROPERTY_EXAMPLES=2000 runs a deeper search than CI's quick one.
PROPERTY = settings(
    max_examples=int(os.environ.get("SEARCH_PARTY_PROPERTY_EXAMPLES", 120)),
    deadline=None,
    database=None,
)

# Real places, chosen for their geometry: mid-latitudes, the equator, both sides of the
# antimeridian (Fiji, Samoa/Chukotka), the far north and the far south.
CITIES = [
    (51.5074, -0.1278),  # London
    (48.8566, 2.3522),  # Paris
    (-0.1807, -78.4678),  # Quito
    (-18.1248, 178.4501),  # Suva, Fiji
    (-13.8333, -171.7500),  # Apia, Samoa
    (64.7337, 177.5089),  # Anadyr, Chukotka
    (78.2232, 15.6267),  # Longyearbyen, Svalbard
    (-77.8419, 166.6863),  # McMurdo Station
    (-54.8019, -68.3030),  # Ushuaia
    (71.2906, -156.7886),  # Utqiagvik, Alaska
]


def chord_distance_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """An independent great-circle distance: the 3-D chord between unit vectors."""

    def unit(lat, lon):
        phi, lam = np.radians(lat), np.radians(lon)
        return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], -1)

    chord = np.linalg.norm(unit(lat1, lon1) - unit(lat2, lon2), axis=-1)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.clip(chord / 2, 0, 1))


# --- strategies -------------------------------------------------------------------------------

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)
near_city = st.builds(
    lambda city, dlat, dlon: (city[0] + dlat, ((city[1] + dlon + 180) % 360) - 180),
    st.sampled_from(CITIES),
    st.floats(-0.05, 0.05),
    st.floats(-0.05, 0.05),
)
antimeridian = st.tuples(
    lats, st.one_of(st.floats(179.9, 180), st.floats(-180, -179.9))
)
polar = st.tuples(st.one_of(st.floats(89.9, 90), st.floats(-90, -89.9)), lons)
anywhere = st.tuples(lats, lons)
centers = st.one_of(near_city, antimeridian, polar, anywhere).map(lambda ll: parse_point(*ll))
radii = st.floats(MIN_RADIUS_M, MAX_RADIUS_M)


def cameras_around(center: Point, radius: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cameras that stress the fence: spread to twice the radius, many within a millimetre of the
    edge, some across the antimeridian spelt as 180, some at the pole, some anywhere."""
    rng = np.random.default_rng(seed)
    points = [
        destination_point(center, rng.uniform(0, 360), d)
        for d in np.concatenate(
            [
                rng.uniform(0, 2 * radius, 150),
                radius + rng.uniform(-1e-3, 1e-3, 100),
                radius + rng.uniform(-2.0, 2.0, 50),  # the box's 1 m padding ring
            ]
        )
    ]
    lat = np.array([p.lat for p in points])
    lon = np.array([p.lon for p in points])
    lat = np.concatenate([lat, [90.0, 90.0, -90.0, center.lat], rng.uniform(-90, 90, 20)])
    lon = np.concatenate([lon, [0.0, 123.0, -45.0, 180.0], rng.uniform(-180, 180, 20)])
    return lat, lon


def assert_fence_exact(center: Point, radius: float, lat, lon, inside: np.ndarray) -> None:
    """Nothing outside is returned, nothing inside is missed (by an independent distance; a
    micrometre band at the edge is left to rounding)."""
    truth = chord_distance_m(center.lat, center.lon, lat, lon)
    assert not np.any(inside & (truth > radius + 1e-6)), "a camera outside the fence was returned"
    assert not np.any(~inside & (truth < radius - 1e-6)), "a camera inside the fence was missed"


# --- known distances --------------------------------------------------------------------------


def test_london_to_paris_is_343_5_km():
    assert distance_m(Point(51.5074, -0.1278), Point(48.8566, 2.3522)) == pytest.approx(
        343_556, abs=50
    )


def test_one_degree_of_latitude_is_111_2_km():
    one_degree = 2 * math.pi * EARTH_RADIUS_M / 360
    assert one_degree == pytest.approx(111_195, abs=1)
    assert distance_m(Point(0, 0), Point(1, 0)) == pytest.approx(one_degree, rel=1e-12)
    assert distance_m(Point(45, 10), Point(46, 10)) == pytest.approx(one_degree, rel=1e-12)


def test_distance_is_exact_across_the_antimeridian_and_over_the_pole():
    one_degree = 2 * math.pi * EARTH_RADIUS_M / 360
    # 0.5 degrees either side of the antimeridian on the equator: one degree, not 359.
    assert distance_m(Point(0, 179.5), Point(0, -179.5)) == pytest.approx(one_degree, rel=1e-9)
    # 180 and -180 are the same meridian.
    assert distance_m(Point(10, 180), Point(10, -180)) == pytest.approx(0, abs=1e-6)
    # Over the North Pole: from 89.5N on one meridian to 89.5N on the opposite one.
    assert distance_m(Point(89.5, 0), Point(89.5, 180)) == pytest.approx(one_degree, rel=1e-9)
    assert distance_m(Point(-89.5, 45), Point(-89.5, -135)) == pytest.approx(one_degree, rel=1e-9)
    # At the pole every longitude is the same point.
    assert distance_m(Point(90, 0), Point(90, 137)) == pytest.approx(0, abs=1e-6)
    # A metre near the pole, where cos(lat) is tiny.
    metre = math.degrees(1 / EARTH_RADIUS_M)
    assert distance_m(Point(89.9999, 0), Point(89.9999 + metre, 0)) == pytest.approx(1, rel=1e-6)


@PROPERTY
@given(centers, st.floats(0, 360), st.floats(0, 20_000))
def test_distance_agrees_with_an_independent_formula(start, bearing, dist):
    end = destination_point(start, bearing, dist)
    got = distance_m(start, end)
    assert got == pytest.approx(float(chord_distance_m(*start, *end)), rel=1e-9, abs=1e-6)
    assert got == pytest.approx(dist, rel=1e-9, abs=1e-6)  # destination_point round-trips
    assert distance_m(end, start) == pytest.approx(got, rel=1e-12, abs=1e-9)


def test_vectorised_distance_matches_scalar():
    lat = np.array([c[0] for c in CITIES])
    lon = np.array([c[1] for c in CITIES])
    matrix = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    assert matrix.shape == (len(CITIES), len(CITIES))
    for i, a in enumerate(CITIES):
        for j, b in enumerate(CITIES):
            assert matrix[i, j] == distance_m(Point(*a), Point(*b))


# --- point and radius validation --------------------------------------------------------------


@pytest.mark.parametrize(
    "lat, lon",
    [
        (51.5, -0.12),
        (" 51.5074 ", "-0.1278"),  # a phone form's stray spaces
        ("+1e1", "0"),
        (90, 179.999),
        (-90, -180),
        (np.float32(12.5), np.int64(3)),
    ],
)
def test_parse_point_accepts_decimal_degrees(lat, lon):
    point = parse_point(lat, lon)
    assert point == Point(float(str(lat).strip()), float(str(lon).strip()))


def test_parse_point_spells_the_antimeridian_one_way():
    assert parse_point(10, 180) == Point(10.0, -180.0)


@pytest.mark.parametrize(
    "lat, lon, message",
    [
        ("abc", "0", "'abc' is not a number"),  # text typed into the field
        ("nan", "0", "'nan' is not a number"),  # NaN as text
        ("0", "inf", "'inf' is not a number"),  # infinity as text
        (float("nan"), 0, "finite"),  # NaN as a float from JSON
        (0, float("-inf"), "finite"),  # infinity as a float
        ("1e400", "0", "finite"),  # overflows to infinity
        ("51,5", "0", "'51,5' is not a number"),  # a decimal comma
        ("1_0", "0", "is not a number"),  # Python's digit separator
        ("51.5°", "0", "is not a number"),  # a degree sign
        ("١٢", "0", "is not a number"),  # non-ASCII digits
        ("51.5 N", "0", "is not a number"),  # a hemisphere letter
        ("", "0", "latitude is missing"),  # an empty field
        ("0", None, "longitude is missing"),  # a missing field
        (True, 0, "must be a number"),  # a checkbox value
        ([51.5], 0, "must be a number"),  # a list from JSON
        (90.0001, 0, "outside -90..90"),  # just past the North Pole
        (-91, 0, "outside -90..90"),
        (0, 180.5, "outside -180..180"),
        (0, -720, "outside -180..180"),
        (151.2, -33.9, "swapped"),  # Sydney typed as lon, lat
    ],
)
def test_parse_point_refuses_bad_coordinates(lat, lon, message):
    with pytest.raises(UserError, match=message):
        parse_point(lat, lon)


def test_parse_point_shortens_a_huge_field_in_its_message():
    with pytest.raises(UserError) as caught:
        parse_point("9" * 10_000 + "x", 0)  # a fuzzed, oversized field
    assert len(str(caught.value)) < 200


def test_parse_radius_defaults_and_accepts_numbers():
    assert parse_radius_m() == DEFAULT_RADIUS_M == 1_000
    assert parse_radius_m("") == DEFAULT_RADIUS_M
    assert parse_radius_m(" 2500 ") == 2500.0
    assert parse_radius_m(MAX_RADIUS_M) == MAX_RADIUS_M == 5_000
    assert parse_radius_m(MIN_RADIUS_M) == MIN_RADIUS_M


@pytest.mark.parametrize(
    "value, message",
    [
        (5_000.01, "over the 5000 m cap"),  # just past the cap
        ("1e9", "over the 5000 m cap"),  # a whole continent
        (0, "below the 50 m minimum"),  # a zero radius
        (-100, "below the 50 m minimum"),  # a negative radius
        (float("nan"), "finite"),
        ("inf", "finite"),
        ("a mile", "must be a number"),
        (True, "must be a number"),
    ],
)
def test_parse_radius_refuses_bad_values(value, message):
    with pytest.raises(UserError, match=message):
        parse_radius_m(value)


def test_cameras_within_refuses_a_radius_over_the_cap():
    # The fence is capped where it is applied, not only where the form is read.
    with pytest.raises(UserError, match="cap"):
        cameras_within(Point(0, 0), 50_000, ["a"], [0.0], [0.0])


# --- the bounding box -------------------------------------------------------------------------


def test_box_splits_at_the_antimeridian():
    box = bounding_box(Point(0, 179.99), 5_000)
    assert len(box.lon_ranges) == 2
    (lo1, hi1), (lo2, hi2) = box.lon_ranges
    assert hi1 == 180 and lo2 == -180 and 179.9 < lo1 < 179.99 and -180 < hi2 < -179.9
    assert box.contains([0, 0, 0], [-179.99, 180.0, 170.0]).tolist() == [True, True, False]


def test_box_takes_every_longitude_when_the_fence_holds_a_pole():
    box = bounding_box(Point(89.99, 10), 5_000)  # the pole is 1.1 km away
    assert box.lon_ranges == ((-180.0, 180.0),) and box.max_lat == 90.0
    south = bounding_box(Point(-89.97, -60), 4_000)  # the pole is 3.3 km away
    assert south.lon_ranges == ((-180.0, 180.0),) and south.min_lat == -90.0


def test_box_near_but_not_over_the_pole_is_wide_but_bounded():
    box = bounding_box(Point(89.9, 0), 5_000)  # the pole is 11 km away: not in the fence
    ((lo, hi),) = box.lon_ranges
    assert 20 < hi < 90 and lo == -hi


def test_sql_params_always_have_two_lon_ranges():
    single = bounding_box(Point(51.5, -0.12), 1_000).sql_params()
    assert len(single) == 6 and single[2:4] == single[4:6]
    split = bounding_box(Point(-18.0, -179.995), 1_000).sql_params()
    assert split[3] == 180.0 and split[4] == -180.0
    assert bbox_where() == "lat BETWEEN ? AND ? AND (lon BETWEEN ? AND ? OR lon BETWEEN ? AND ?)"
    assert bbox_where("c.lat", "c.lon").count("c.lon BETWEEN") == 2
    with pytest.raises(ValueError):
        bbox_where("lat; DROP TABLE cameras", "lon")  # a column name is never user input


@PROPERTY
@given(centers, radii, st.integers(0, 2**32 - 1))
def test_box_contains_every_point_of_the_fence(center, radius, seed):
    lat, lon = cameras_around(center, radius, seed)
    truth = chord_distance_m(center.lat, center.lon, lat, lon) <= radius + 1e-6
    box = bounding_box(center, radius).contains(lat, lon)
    assert np.all(box[truth]), "the prefilter dropped a camera inside the fence"
    # The fence's edge in every direction, where the box is tightest.
    edge = [destination_point(center, b, radius) for b in np.linspace(0, 360, 721)]
    edge_lat, edge_lon = np.array(edge).T
    assert np.all(bounding_box(center, radius).contains(edge_lat, edge_lon))


@PROPERTY
@given(centers, radii, st.integers(0, 2**32 - 1))
def test_sql_prefilter_then_exact_filter_is_the_fence(center, radius, seed):
    lat, lon = cameras_around(center, radius, seed)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE cameras (id INTEGER PRIMARY KEY, lat REAL, lon REAL)")
    db.execute("CREATE INDEX cameras_lat ON cameras (lat)")
    db.executemany("INSERT INTO cameras VALUES (?, ?, ?)", zip(range(len(lat)), lat, lon))
    box = bounding_box(center, radius)
    rows = db.execute(
        f"SELECT id, lat, lon FROM cameras WHERE {bbox_where()}", box.sql_params()
    ).fetchall()
    db.close()
    got = np.zeros(len(lat), dtype=bool)
    got[[r[0] for r in rows]] = True
    assert np.array_equal(got, box.contains(lat, lon)), "SQL and numpy prefilters disagree"
    ids = np.array([r[0] for r in rows], dtype=int)
    inside = np.zeros(len(lat), dtype=bool)
    inside[cameras_within(center, radius, ids, lat[ids], lon[ids])] = True
    assert_fence_exact(center, radius, lat, lon, inside)


# --- the exact fence --------------------------------------------------------------------------


@PROPERTY
@given(centers, radii, st.integers(0, 2**32 - 1))
def test_cameras_within_returns_exactly_the_fence_nearest_first(center, radius, seed):
    lat, lon = cameras_around(center, radius, seed)
    ids = np.array([f"cam-{i}" for i in range(len(lat))])
    found = cameras_within(center, radius, ids, lat, lon)
    inside = np.isin(ids, found)
    assert len(set(found)) == len(found)
    assert_fence_exact(center, radius, lat, lon, inside)
    index = {cam: i for i, cam in enumerate(ids)}
    dist = haversine_m(center.lat, center.lon, lat, lon)[[index[c] for c in found]]
    assert np.all(np.diff(dist) >= 0)
    assert np.array_equal(within_mask(center, radius, lat, lon), inside)


def test_cameras_within_a_real_neighbourhood():
    home = Point(51.5074, -0.1278)
    cams = {
        "next door": destination_point(home, 90, 40),
        "corner shop": destination_point(home, 200, 950),
        "park": destination_point(home, 10, 1_050),
        "other town": Point(48.8566, 2.3522),
    }
    ids = list(cams)
    lat = [cams[c].lat for c in ids]
    lon = [cams[c].lon for c in ids]
    assert cameras_within(home, 1_000, ids, lat, lon).tolist() == ["next door", "corner shop"]
    assert cameras_within(home, 2_000, ids, lat, lon).tolist() == [
        "next door",
        "corner shop",
        "park",
    ]
    assert cameras_within(home, 1_000, [], [], []).tolist() == []


def test_cameras_within_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match="same length"):
        cameras_within(Point(0, 0), 1_000, ["a", "b"], [0.0], [0.0])  # one latitude for two ids


# --- the time window --------------------------------------------------------------------------

aware_times = st.builds(
    lambda dt, minutes: dt.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(-14 * 60, 14 * 60),
)


@PROPERTY
@given(aware_times, st.integers(-3 * 24 * 3600, 3 * 24 * 3600))
def test_time_window_keeps_sightings_after_last_seen_minus_slack(last_seen, offset_s):
    sighting = (last_seen + timedelta(seconds=offset_s)).astimezone(UTC)
    expected = offset_s >= -SIGHTING_SLACK.total_seconds()
    assert sighting_in_window(sighting, last_seen) is expected
    assert (sighting >= earliest_sighting_time(last_seen)) is expected


def test_time_window_edges_and_time_zones():
    last_seen = datetime(2025, 6, 1, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    assert timedelta(minutes=15) == SIGHTING_SLACK
    assert sighting_in_window(last_seen - timedelta(minutes=14), last_seen)
    assert sighting_in_window(last_seen - SIGHTING_SLACK, last_seen)
    assert not sighting_in_window(last_seen - timedelta(minutes=16), last_seen)
    assert sighting_in_window(last_seen + timedelta(days=2), last_seen)
    # 16:00 UTC is 18:00 at UTC+2: the same instant, inside the window.
    assert sighting_in_window(datetime(2025, 6, 1, 16, 0, tzinfo=UTC), last_seen)
    assert not sighting_in_window(datetime(2025, 6, 1, 15, 40, tzinfo=UTC), last_seen)
    assert sighting_in_window(last_seen - timedelta(hours=1), last_seen, slack=timedelta(hours=1))


def test_time_window_refuses_naive_times():
    naive = datetime(2025, 6, 1, 18, 0)  # no time zone: ambiguous between phone and camera
    aware = naive.replace(tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        sighting_in_window(naive, aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        sighting_in_window(aware, naive)
    with pytest.raises(ValueError, match="negative"):
        earliest_sighting_time(aware, timedelta(minutes=-1))  # a negative slack
