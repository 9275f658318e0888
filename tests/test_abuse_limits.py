"""Abuse limits on real SQLite with the real detector and embedder on real fixture dogs: the radius
cap, searches per account per day, the found-report rate, consent requests per camera per day, and
a search that stays where its owner put it (search_party.community.limits, geofence, consent)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from domain_world import (
    LAST_SEEN,
    LAST_SEEN_POINT,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    camera,
    dog_photos,
    models,
    open_index,
    place,
    store_sightings,
)
from owner_world import OWNER_PHOTO, account
from web_helpers import api, db_of

from search_party.community import accounts, consent, limits, reports, standing_searches
from search_party.errors import UserError
from search_party.search import matching
from search_party.store.db import open_db, utcnow


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "sp.db")


def photo() -> list[bytes]:
    return list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:1])


def lost(db, owner_id, name="Bella", now=NOW, **overrides):
    fields = dict(pet_name=name, species="dog", photos=photo(), lat=LAST_SEEN_POINT.lat,
                  lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=now)
    fields.update(overrides)
    return reports.create_lost_report(db, owner_id, **fields, **models())[0]


def found(db, reporter_id, n, now=NOW, as_shelter=False):
    return reports.create_found_report(db, reporter_id, species="dog", photos=photo(), lat=LAST_SEEN_POINT.lat,
                                       lon=LAST_SEEN_POINT.lon, found_at=now - timedelta(minutes=n),
                                       as_shelter=as_shelter, now=now, **models())[0]


def count(db, table):
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("radius", [5_001, "50000", "1e9", 49, "inf", "nan", -1])
def test_a_search_radius_above_the_cap_or_below_the_floor_is_refused(db, radius):
    """Tried: radii past the 5 km cap, below 50 m, and infinite or not a number."""
    owner = accounts.create_user(db, "owner@example.org")
    with pytest.raises(UserError, match="radius"):
        lost(db, owner.id, radius_m=radius)
    with pytest.raises(UserError, match="radius"):
        matching.Fence(LAST_SEEN_POINT, radius, LAST_SEEN)
    assert count(db, "lost_reports") == 0
    assert lost(db, owner.id, radius_m=5_000).radius_m == 5_000  # the cap itself is allowed


def test_an_account_makes_at_most_three_searches_a_day_and_deleting_one_does_not_help(db):
    """Tried: a fourth search the same day; deleting a search and making another; the same
    submission sent twice (a double tap, which is not a new search)."""
    owner, other = accounts.create_user(db, "owner@example.org"), accounts.create_user(db, "other@example.org")
    made = [lost(db, owner.id, name=f"Dog {n}", now=NOW + timedelta(minutes=n)) for n in range(3)]
    assert lost(db, owner.id, name="Dog 0", now=NOW + timedelta(minutes=5)).id == made[0].id  # the same submission
    with pytest.raises(limits.RateLimited, match="3 searches in the last 24 hours"):
        lost(db, owner.id, name="Dog 3", now=NOW + timedelta(hours=1))
    reports.delete_lost_report(db, made[0].id, owner.id)
    with pytest.raises(limits.RateLimited):
        lost(db, owner.id, name="Dog 3", now=NOW + timedelta(hours=2))
    # Refused before any model runs: a file that is not even an image is refused for the limit.
    with pytest.raises(limits.RateLimited):
        lost(db, owner.id, name="Dog 4", photos=[b"not an image"], now=NOW + timedelta(hours=2))
    assert lost(db, other.id, name="Other", now=NOW + timedelta(hours=2))  # another account is not held
    assert lost(db, owner.id, name="Dog 3", now=NOW + timedelta(days=1, seconds=1))  # a day later
    assert count(db, "lost_reports") == 4


def test_found_reports_are_limited_per_day_and_shelters_have_a_larger_allowance(db):
    """Tried: a sixth found report by a neighbour in one day."""
    finder = accounts.create_user(db, "finder@example.org")
    for n in range(limits.FOUND_REPORTS_PER_DAY):
        found(db, finder.id, n)
    with pytest.raises(limits.RateLimited, match="5 found reports"):
        found(db, finder.id, 30)
    admin = accounts.create_user(db, "admin@example.org", role="admin")
    shelter = accounts.register_shelter(db, "shelter@example.org", None, name="Hope Shelter",
                                     lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, service_radius_m=20_000)
    accounts.approve_shelter(db, shelter.user_id, admin.id)
    for n in range(limits.FOUND_REPORTS_PER_DAY + 1):
        found(db, shelter.user_id, n, as_shelter=True)
    assert count(db, "found_reports") == 2 * limits.FOUND_REPORTS_PER_DAY + 1


def test_a_cameras_daily_requests_are_not_given_back_by_deleting_the_search(db, tmp_path):
    """Tried: a search that used up a camera's five requests, deleted and made again the same day."""
    cam = camera(db, "neighbour@example.org", place(45, 300))
    for hours in range(6):  # the same dog on six separate visits: six candidates for one camera
        store_sightings(db, cam, [(LOST_DOG, 1)], shift=timedelta(hours=hours))
    owner = accounts.create_user(db, "owner@example.org")
    first = lost(db, owner.id, name="Bella")
    run = standing_searches.search_report(db, first.id, open_index(db, tmp_path), now=NOW)
    assert len(run.asked) == consent.REQUESTS_PER_CAMERA_PER_DAY == 5
    reports.delete_lost_report(db, first.id, owner.id)
    again = lost(db, owner.id, name="Bella again", now=NOW + timedelta(minutes=10))
    run = standing_searches.search_report(db, again.id, open_index(db, tmp_path), now=NOW + timedelta(minutes=10))
    assert len(run.new_matches) == 6 and run.asked == []  # the camera's owner is not asked again today
    assert len(consent.send_requests(db, NOW + timedelta(hours=25))) == 5  # the next day


def test_a_search_keeps_the_place_and_radius_it_was_created_with(db):
    """Tried: renewing; then writing a new place or radius straight into SQLite, as any future
    code path would have to."""
    owner = accounts.create_user(db, "owner@example.org")
    report = lost(db, owner.id, radius_m=800)
    renewed = reports.renew(db, report.id, owner.id, now=NOW + timedelta(days=1))
    assert (renewed.last_seen_point, renewed.radius_m) == (report.last_seen_point, 800)
    far = place(90, 4_000)
    for sql, params in [("UPDATE lost_reports SET lat = ?, lon = ? WHERE id = ?", [far.lat, far.lon, report.id]),
                        ("UPDATE lost_reports SET radius_m = 5000 WHERE id = ?", [report.id]),
                        ("UPDATE lost_reports SET lat = lat + 0.0001 WHERE id = ?", [report.id])]:
        with pytest.raises(sqlite3.IntegrityError, match="keeps the place and radius"):
            db.execute(sql, params)
        db.conn.rollback()
    assert reports.get_lost_report(db, report.id).last_seen_point == report.last_seen_point
    # Other edits stay possible.
    db.execute("UPDATE lost_reports SET description = 'brown collar' WHERE id = ?", [report.id])


def test_the_web_api_keeps_the_limits(app):
    """Tried over HTTP: a renewal carrying a new place and radius, and a fourth search in a day."""
    owner = account(app, "owner@example.org")

    def create(name: str):
        with OWNER_PHOTO.open("rb") as fh:
            return api(owner, "POST", "/api/reports", data={
                "pet_name": name, "species": "dog", "lat": "51.5007", "lon": "-0.1246", "radius_m": "1000",
                "last_seen": (utcnow() - timedelta(hours=1)).isoformat(), "photos": (fh, "dog.jpg")})

    first = None
    for n in range(3):
        response = create(f"Dog {n}")
        assert response.status_code in (200, 201), response.get_json()
        first = first or response.get_json()["report"]
    moved = api(owner, "POST", f"/api/reports/{first['id']}/renew",
                json={"days": 2, "lat": 51.6, "lon": -0.2, "radius_m": 5000})
    assert moved.status_code == 200
    with db_of(app) as db:
        kept = reports.get_lost_report(db, first["id"])
    assert (kept.last_seen_point.lat, kept.last_seen_point.lon, kept.radius_m) == (51.5007, -0.1246, 1000)
    refused = create("Dog 3")
    assert 400 <= refused.status_code < 500 and "24 hours" in refused.get_json()["error"]
