"""Standing searches: a sighting stored after the report is scored at once by the searches whose
fence holds its camera — through the worker's own ingest code on a real clip — and a sighting the
hook missed is caught up from SQLite; one visit is one request."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

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
    settings_for,
    store_sightings,
)
from short_clips import dog_clip

from search_party.community import accounts, consent, notifications, reports, standing_searches
from search_party.ingest import clip_task, jobs, spool
from search_party.store import storage
from search_party.store.db import open_db, utcnow


def test_a_dog_filmed_an_hour_after_the_report_is_found_by_the_ingest_path(tmp_path):
    settings = settings_for(tmp_path / "data")
    db = open_db(settings.db_path)
    owner = accounts.create_user(db, "owner@example.org")
    cam = camera(db, "neighbour@example.org", place(120, 400))
    reported = utcnow() - timedelta(hours=2)
    # Dog 131: the owner's photos are sequence 4; the clip (tests/short_clips.py) walks its
    # sequence-5 crops across a real CCTV frame.
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Max", species="dog", photos=list(dog_photos("131", 4)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=reported - timedelta(minutes=30),
        now=reported, **models())
    index = open_index(db, tmp_path)
    assert standing_searches.search_report(db, report.id, index, now=reported).new_matches == []
    submission = spool.register_clip(settings, db, dog_clip(tmp_path / "porch.mp4"), cam.id,
                                      start_time=reported + timedelta(hours=1))
    clip = clip_task.run_clip(settings, submission.clip.id, jobs.new_claim())  # the worker's task body
    assert clip.status == "done" and clip.sightings_count == 1
    (match,) = consent.matches_of_report(db, report.id)
    assert match.state == "asked" and match.camera_id == cam.id
    assert match.sighting_id == storage.list_sightings(db, clip_id=clip.id)[0].id
    (request,) = notifications.inbox(db, cam.owner_id)
    assert request.match_id == match.id and "Max" in request.subject
    assert reports.get_lost_report(db, report.id).scored_through == match.sighting_id


def test_a_search_catches_its_index_up_without_the_write_lock_and_skips_nothing_stored_meanwhile(tmp_path):
    """The search's index sync is stopped (at SQLite's statement trace) while it reads the vectors
    stored since the index was opened; meanwhile another connection that will not wait for a lock
    stores a clip of the same dog.  Nothing waits, and both sightings are scored once."""
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    cam = camera(db, "neighbour@example.org", place(45, 300))
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    index = open_index(db, tmp_path)  # the server's index, opened before the sighting below
    (first,) = store_sightings(db, cam, [(LOST_DOG, 1)], shift=timedelta(hours=1))
    reading, go = threading.Event(), threading.Event()

    def pause_in_the_index_catch_up(sql: str) -> None:  # the statement, its values filled in
        if re.search(r"SELECT id, vector FROM sightings WHERE model_version = '[^']+' AND id > \d+", sql) \
                and not reading.is_set():
            reading.set()
            go.wait(60)

    runs: list = []

    def run_the_search() -> None:
        with open_db(tmp_path / "sp.db") as searching:
            searching.conn.set_trace_callback(pause_in_the_index_catch_up)
            runs.append(standing_searches.search_report(searching, report.id, index, now=NOW))

    search = threading.Thread(target=run_the_search)
    search.start()
    try:
        assert reading.wait(60)
        impatient = open_db(tmp_path / "sp.db")
        impatient.execute("PRAGMA busy_timeout = 0")  # "database is locked" at once if anyone writes
        (late,) = store_sightings(impatient, cam, [(LOST_DOG, 3)], shift=timedelta(hours=1, minutes=1))
    finally:
        go.set()
        search.join(60)
    (run,) = runs
    assert run.sightings_compared == 1 and len(run.new_matches) == 1  # the first, through FAISS
    assert reports.get_lost_report(db, report.id).scored_through == first < late
    (caught_up,) = standing_searches.rescore_new_sightings(db, now=NOW)  # the late one, once
    assert caught_up.sightings_compared == 1 and caught_up.new_matches == []  # the same visit
    assert standing_searches.rescore_new_sightings(db, now=NOW) == []
    assert [m.sighting_id for m in consent.matches_of_report(db, report.id)] == [first]


def test_a_sighting_the_hook_missed_is_caught_up_once_and_a_visit_is_asked_once(tmp_path):
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    cam = camera(db, "neighbour@example.org", place(45, 300))
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    # Stored straight through storage, as by a worker killed before its hook ran.
    (first,) = store_sightings(db, cam, [(LOST_DOG, 1)], shift=timedelta(hours=1))
    (run,) = standing_searches.rescore_new_sightings(db, now=NOW)  # the periodic catch-up
    assert run.sightings_compared == 1 and len(run.new_matches) == 1 and len(run.asked) == 1
    assert standing_searches.rescore_new_sightings(db, now=NOW) == []  # tried: running it again
    # A second clip of the same visit a minute later joins the request instead of a new one.
    store_sightings(db, cam, [(LOST_DOG, 3)], shift=timedelta(hours=1, minutes=1))
    (again,) = standing_searches.rescore_new_sightings(db, now=NOW)
    assert again.sightings_compared == 1 and again.new_matches == []
    assert [m.sighting_id for m in consent.matches_of_report(db, report.id)] == [first]


def test_a_search_only_rescores_sightings_in_its_own_fence(tmp_path):
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    near = camera(db, "near@example.org", place(0, 800), name="near")
    far = camera(db, "far@example.org", place(0, 1500), name="far")
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    store_sightings(db, far, [(LOST_DOG, 1)], shift=timedelta(hours=1))
    store_sightings(db, near, [(LOST_DOG, 3)], shift=timedelta(hours=1))
    (run,) = standing_searches.rescore_new_sightings(db, now=NOW)
    assert run.sightings_compared == 1
    assert [m.camera_id for m in consent.matches_of_report(db, report.id)] == [near.id]


def test_two_new_clips_of_one_visit_scored_in_one_run_are_asked_once(tmp_path):
    db = open_db(tmp_path / "sp.db")
    owner = accounts.create_user(db, "owner@example.org")
    cam = camera(db, "neighbour@example.org", place(45, 300))
    report, _ = reports.create_lost_report(
        db, owner.id, pet_name="Bella", species="dog", photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)),
        lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon, last_seen=LAST_SEEN, now=NOW, **models())
    standing_searches.search_report(db, report.id, open_index(db, tmp_path), now=NOW)
    # The same two clips as the test above (one visit, a minute apart), but both stored before
    # the search re-scores: tried with one rescoring run over both, which asked twice before the
    # new hits were merged among themselves.
    (first,) = store_sightings(db, cam, [(LOST_DOG, 1)], shift=timedelta(hours=1))
    (second,) = store_sightings(db, cam, [(LOST_DOG, 3)], shift=timedelta(hours=1, minutes=1))
    (run,) = standing_searches.rescore_new_sightings(db, now=NOW)
    assert run.sightings_compared == 2 and len(run.new_matches) == 1 and len(run.asked) == 1
    (match,) = consent.matches_of_report(db, report.id)
    assert match.state == "asked" and match.sighting_id in {first, second}
    assert len(notifications.inbox(db, cam.owner_id)) == 1
    assert standing_searches.rescore_new_sightings(db, now=NOW) == []
