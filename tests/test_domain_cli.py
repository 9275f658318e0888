"""The domain from the shell: `search-party user / report / consent / inbox / activity /
retention`, run in-process on a real data folder with the real models and fixture photos."""

from __future__ import annotations

from datetime import timedelta

import pytest
from domain_world import LOST_DOG, LOST_DOG_PHOTOS, dog_photos, image, place, store_sightings
from sighting_drafts import T0

from search_party.community import cameras
from search_party.errors import UserError
from search_party.store.db import open_db, utcnow


@pytest.fixture
def shell(settings, runner):
    return settings, runner


def test_the_cli_walks_a_search_from_report_to_found(shell, tmp_path):
    settings, run = shell
    run("user", "add", "owner@example.org")
    run("camera", "add", "--owner", "neighbour@example.org", "--lat", str(place(45, 300).lat),
        "--lon", str(place(45, 300).lon), "--name", "porch")
    run("camera", "opt-in", "1")
    filmed = utcnow() - timedelta(hours=2) - T0  # the fixture drafts, filmed about 2 h ago
    with open_db(settings.db_path) as db:
        store_sightings(db, cameras.get_camera(db, 1), [(LOST_DOG, 1), ("177", 1)], shift=filmed)
    photos = []
    for n, data in enumerate(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:3]):
        photos.append(tmp_path / f"bella{n}.jpg")
        photos[-1].write_bytes(data)
    last_seen = (utcnow().replace(microsecond=0) - timedelta(hours=4)).isoformat()
    lost = run("report", "lost", *map(str, photos), "--as", "owner@example.org", "--name", "Bella",
               "--lat", str(place(0, 0).lat), "--lon", str(place(0, 0).lon), "--last-seen", last_seen)
    assert "lost report 1 for Bella: 2 sighting(s) compared, 1 likely, 1 request(s) sent" in lost.output
    again = run("report", "lost", *map(str, photos), "--as", "owner@example.org", "--name", "Bella",
                "--lat", str(place(0, 0).lat), "--lon", str(place(0, 0).lon), "--last-seen", last_seen)
    assert "already submitted" in again.output  # tried: the same report twice
    listed = run("consent", "list", "--as", "neighbour@example.org").output
    assert listed.startswith("match 1\tasked\tBella (dog), last seen about 300 m away")
    assert run("report", "sightings", "1", "--as", "owner@example.org").output == ""
    assert run("consent", "share", "1", "--as", "neighbour@example.org").output == "match 1: shared\n"
    assert run("consent", "share", "1", "--as", "neighbour@example.org").output == "match 1: shared\n"
    shared = run("report", "sightings", "1", "--as", "owner@example.org").output
    assert "area 89" in shared and "porch" not in shared and str(place(45, 300).lat)[:7] not in shared
    assert "A neighbour shared a sighting that may be Bella" in run("inbox", "--as", "owner@example.org").output
    assert "You shared a sighting from camera 'porch'" in run("activity", "--as", "neighbour@example.org").output
    assert "ended: found" in run("report", "home", "1", "--as", "owner@example.org").output
    assert "0 search(es) expired" in run("retention", "run").output
    deleted = run("user", "delete", "neighbour@example.org", "--yes").output
    assert "1 camera(s), 2 sighting(s)" in deleted


def test_cli_mistakes_are_one_line_errors(shell, tmp_path):
    settings, run = shell
    run("user", "add", "owner@example.org")
    person = tmp_path / "person.png"
    person.write_bytes(image("astronaut.png"))
    result = run("report", "lost", str(person), "--as", "owner@example.org", "--name", "Bella",
                 "--lat", "51.5", "--lon", "-0.12", "--last-seen", utcnow().isoformat(), ok=False)
    assert isinstance(result.exception, UserError) and "no dog found in photo 1" in str(result.exception)
    result = run("consent", "share", "1", "--as", "nobody@example.org", ok=False)
    assert isinstance(result.exception, UserError) and "no account" in str(result.exception)
    result = run("report", "lost", str(person), "--as", "owner@example.org", "--name", "Bella",
                 "--lat", "51.5", "--lon", "-0.12", "--last-seen", "yesterday", ok=False)
    assert "not an ISO 8601 time" in str(result.exception)  # tried: a word for a time
