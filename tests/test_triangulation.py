"""Repeated and overlapping searches cannot place a camera more finely than its coarse cell
(issue 6, "Location"), tried through the real report wizard, matching, consent and status path.

Two worlds are built alike but for one thing: the camera stands near one corner of its H3 cell,
or near the opposite corner.  Both film the same real fixture dog (MPDD 172).  Pet owners (one
account per search, as the daily limit requires) report that dog lost from many places with many
radii; each search asks the camera owner, who shares every time.  Everything each pet owner is
then shown (the shared sighting with its area and distance, the counts of the search page) is
collected in both worlds: if the two records are identical, nothing shown tells one corner of
the cell from the other, and the area shown is the cell, every time.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from domain_world import (
    LAST_SEEN,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    dog_photos,
    models,
    open_index,
    place,
    store_sightings,
)
from domain_world import camera as add_camera

from search_party.community import accounts, consent, reports, standing_searches
from search_party.community.search_status import search_status
from search_party.search.coarse_location import area_of_cell, coarse_area, coarse_cell
from search_party.search.geofence import MAX_RADIUS_M, MIN_RADIUS_M, Point, destination_point, distance_m
from search_party.store.db import open_db

SEARCHES = 20  # four days of the camera's five requests a day
CAMERA = place(60, 450)


def near_vertex(cell: str, vertex: int) -> Point:
    """A point 90 % of the way from the cell's centre to one of its corners."""
    area = area_of_cell(cell)
    corner = area.boundary[vertex]
    return Point(area.center.lat + 0.9 * (corner.lat - area.center.lat),
                 area.center.lon + 0.9 * (corner.lon - area.center.lon))


@pytest.fixture(scope="module")
def positions() -> tuple[Point, Point]:
    cell = coarse_cell(*CAMERA)
    here, there = near_vertex(cell, 0), near_vertex(cell, 3)  # opposite corners of the hexagon
    assert coarse_cell(*here) == coarse_cell(*there) == cell
    area = area_of_cell(cell)
    diameter = max(distance_m(a, b) for a in area.boundary for b in area.boundary)
    assert distance_m(here, there) > 0.8 * diameter  # the camera could be anywhere in between
    return here, there


def searches_covering_the_cell(cell: str, count: int) -> list[tuple[Point, float]]:
    """(centre, radius) of searches an attacker might run, from every side and at every size,
    each holding the whole cell (so the camera is found wherever it stands in it)."""
    rng = np.random.default_rng(11)
    area = area_of_cell(cell)
    reach = max(distance_m(area.center, corner) for corner in area.boundary)
    out = []
    for _ in range(count):
        radius = float(rng.uniform(reach + MIN_RADIUS_M, MAX_RADIUS_M))
        centre = destination_point(area.center, rng.uniform(0, 360), rng.uniform(0, radius - reach - 1))
        out.append((centre, radius))
    return out


def run_world(tmp_path, camera_at: Point, searches: list[tuple[Point, float]]) -> list[tuple]:
    """Build the world with its camera at ``camera_at``, run every search through the real path
    (the camera owner shares each request), and return what each pet owner was shown."""
    db = open_db(tmp_path / "sp.db")
    cam = add_camera(db, "neighbour@example.org", camera_at)
    store_sightings(db, cam, [(LOST_DOG, 1)])
    photos = list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:1])
    shown = []
    for n, (centre, radius) in enumerate(searches):
        now = NOW + timedelta(hours=25 * (n // 5), minutes=n % 5)  # a fresh daily quota every 5
        owner = accounts.create_user(db, f"owner{n}@example.org")
        report, _ = reports.create_lost_report(
            db, owner.id, pet_name=f"Dog {n}", species="dog", photos=photos, lat=centre.lat, lon=centre.lon,
            radius_m=radius, last_seen=LAST_SEEN, now=now, **models())
        run = standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=now)
        for match_id in run.asked:
            consent.share(db, match_id, cam.owner_id, now=now)
        sightings = consent.shared_sightings(db, report.id, owner.id)
        status = search_status(db, report.id, owner.id, now=now)
        shown.append((
            [(s.label, s.first_time, s.last_time, round(s.score, 6), s.area, s.distance_m) for s in sightings],
            (status.cameras_in_range, status.sightings_checked, status.requests_sent, status.shared)))
    db.close()
    return shown


def test_many_searches_show_the_same_cell_wherever_in_it_the_camera_stands(tmp_path, positions):
    here, there = positions
    cell = coarse_cell(*here)
    searches = searches_covering_the_cell(cell, SEARCHES)
    shown_here = run_world(tmp_path / "here", here, searches)
    shown_there = run_world(tmp_path / "there", there, searches)

    # Every search reached the camera, its owner shared, and the pet owner was shown the cell.
    assert all(len(sightings) == 1 for sightings, _ in shown_here)
    areas = {s[4] for sightings, _ in shown_here for s in sightings}
    assert areas == {coarse_area(*here)}
    # Distances shown come from the cell's centre, so they cannot be trilaterated below it.
    centre_of_cell = coarse_area(*here).center
    for (centre, _), (sightings, _) in zip(searches, shown_here):
        assert sightings[0][5] == round(distance_m(centre, centre_of_cell) / 100) * 100
    # The camera near one corner or near the opposite corner: the pet owners saw the same things.
    assert shown_here == shown_there


def test_small_searches_cannot_tell_where_in_its_cell_a_camera_stands(tmp_path, positions):
    """Tried: the attacker's smallest search (50 m) centred on one corner of the cell."""
    here, there = positions
    probe = [(here, MIN_RADIUS_M)]
    assert run_world(tmp_path / "here", here, probe) == run_world(tmp_path / "there", there, probe)
