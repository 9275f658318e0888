"""Lost and found reports on real SQLite with the real detector and embedder on real fixture
photos: validation, what is kept of a photo, idempotent submission, renewal, lost × found
matching, and the shelter's view."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from domain_world import (
    LAST_SEEN,
    LAST_SEEN_POINT,
    LOST_DOG,
    LOST_DOG_PHOTOS,
    NOW,
    dog_photos,
    image,
    models,
    place,
)
from PIL import Image

from embeddings.errors import ImageError
from search_party.community import accounts, consent, notifications, reports, retention
from search_party.errors import Forbidden, UserError
from search_party.search.coarse_location import coarse_area
from search_party.store.db import open_db


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "sp.db")


@pytest.fixture
def owner(db):
    return accounts.create_user(db, "owner@example.org")


def lost(db, owner_id, photos=None, **overrides):
    fields = dict(pet_name="Bella", species="dog", lat=LAST_SEEN_POINT.lat, lon=LAST_SEEN_POINT.lon,
                  last_seen=LAST_SEEN, now=NOW,
                  photos=list(photos if photos is not None else dog_photos(LOST_DOG, LOST_DOG_PHOTOS)))
    fields.update(overrides)
    return reports.create_lost_report(db, owner_id, **fields, **models())


def stored_counts(db):
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("lost_reports", "found_reports", "report_photos", "query_vectors")}


def test_a_report_keeps_one_vector_and_one_metadata_free_crop_per_photo(db, owner):
    photos = dog_photos(LOST_DOG, LOST_DOG_PHOTOS)
    report, created = lost(db, owner.id)
    assert created and report.status == "active" and report.radius_m == 1000.0
    assert report.expires == NOW + timedelta(days=3)
    assert len(report.photo_ids) == len(photos) == stored_counts(db)["query_vectors"]
    kept = db.execute("SELECT image FROM report_photos WHERE id = ?", [report.photo_ids[0]]).fetchone()[0]
    with Image.open(io.BytesIO(kept)) as img:
        assert img.format == "JPEG" and max(img.size) <= reports.PHOTO_SIDE
        assert not img.getexif() and "exif" not in img.info
    vectors = reports.query_vectors(db, report.id, models()["models"].embedder.version)
    assert vectors.shape == (len(photos), models()["models"].embedder.dim)


def test_a_photo_without_the_reported_species_refuses_the_whole_report(db, owner):
    photos = list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)[:2])
    with pytest.raises(UserError, match="no dog found in photo 3"):  # tried: a person photo third
        lost(db, owner.id, photos=[*photos, image("astronaut.png")])
    with pytest.raises(UserError, match="no dog found in photo 1.*cat"):  # tried: a cat as a dog
        lost(db, owner.id, photos=[image("skimage_chelsea.png")])
    assert set(stored_counts(db).values()) == {0}  # nothing of a refused report is stored
    cat, created = lost(db, owner.id, photos=[image("skimage_chelsea.png")], species="cat",
                        pet_name="Chelsea")
    assert created and cat.species == "cat"  # the same photo is fine for a lost cat


def test_bad_report_input_is_refused(db, owner):
    cases = [
        (dict(radius_m=6000), "over the 5000 m cap"),  # tried: a 6 km radius
        (dict(photos=[]), "1 to 5 photos"),  # tried: no photo
        (dict(photos=list(dog_photos(LOST_DOG, LOST_DOG_PHOTOS)) * 2), "1 to 5 photos"),  # 10
        (dict(last_seen=NOW + timedelta(hours=1)), "in the future"),  # tried: last seen tomorrow-ish
        (dict(last_seen=LAST_SEEN.replace(tzinfo=None)), "time zone"),  # tried: a naive time
        (dict(last_seen=NOW - timedelta(days=90)), "more than 60 days"),  # tried: 90 days ago
        (dict(species="rabbit"), "dog or a cat"),  # tried: another species
        (dict(pet_name="   "), "name is missing"),  # tried: a blank name
        (dict(lat="91"), "latitude 91 is outside"),  # tried: latitude 91
        (dict(lat="nan"), "not a number"),  # tried: NaN as text
        (dict(expires_in=timedelta(days=30)), "renewable"),  # tried: a 30-day search
    ]
    for overrides, message in cases:
        with pytest.raises(UserError, match=message):
            lost(db, owner.id, **overrides)
    with pytest.raises(ImageError, match="photo 1"):  # tried: bytes that are not an image
        lost(db, owner.id, photos=[b"GIF89a but not really"])
    assert set(stored_counts(db).values()) == {0}


def test_submitting_the_same_report_twice_stores_it_once(db, owner):
    first, created = lost(db, owner.id)
    again, created_again = lost(db, owner.id)  # tried: the same form posted twice
    assert created and not created_again and again.id == first.id
    keyed, _ = lost(db, owner.id, pet_name="Bella II", submission_key="form-123")
    keyed_again, created_keyed = lost(db, owner.id, pet_name="Bella II", submission_key="form-123")
    assert not created_keyed and keyed_again.id == keyed.id  # tried: a retried request, same key
    assert stored_counts(db)["lost_reports"] == 2


def test_a_search_expires_renews_and_cannot_be_renewed_once_found(db, owner):
    report, _ = lost(db, owner.id)
    stranger = accounts.create_user(db, "stranger@example.org")
    expired_ids, _ = retention.expire_searches(db, now=report.expires)
    assert expired_ids == [report.id] and reports.get_lost_report(db, report.id).status == "expired"
    with pytest.raises(Forbidden):  # tried: someone else renewing it
        reports.renew(db, report.id, stranger.id, now=NOW)
    renewed = reports.renew(db, report.id, owner.id, now=report.expires + timedelta(hours=1))
    assert renewed.status == "active" and renewed.expires == report.expires + timedelta(days=3, hours=1)
    retention.mark_found(db, report.id, owner.id, now=NOW)
    with pytest.raises(UserError, match="marked found"):  # tried: renewing a found search
        reports.renew(db, report.id, owner.id, now=NOW)


def test_a_found_dog_is_matched_to_the_lost_report_nearby_and_both_are_told(db, owner):
    report, _ = lost(db, owner.id, photos=dog_photos("182", 4), pet_name="Rex")
    finder = accounts.create_user(db, "finder@example.org")
    other_dog, _ = reports.create_found_report(
        db, finder.id, species="dog", photos=list(dog_photos("177", 1)), lat=place(0, 2000).lat,
        lon=place(0, 2000).lon, found_at=NOW - timedelta(minutes=30), now=NOW, **models())
    assert consent.found_matches(db, owner.id, lost_report_id=report.id) == []  # another dog
    spot = place(180, 3000)  # beyond the 1 km camera fence, within the found-match radius
    found, created = reports.create_found_report(
        db, finder.id, species="dog", photos=list(dog_photos("182", 2)), lat=spot.lat, lon=spot.lon,
        found_at=NOW - timedelta(minutes=20), now=NOW, **models())
    (match,) = consent.found_matches(db, owner.id, lost_report_id=report.id)
    assert created and match.found_report_id == found.id and match.source == "neighbour"
    assert match.area == coarse_area(spot.lat, spot.lon)  # where it was found: coarse only
    (seen_by_finder,) = consent.found_matches(db, finder.id, found_report_id=found.id)
    assert seen_by_finder.lost_report_id == report.id
    assert consent.photo_image(db, found.photo_ids[0], owner.id)  # the owner may see the finder's photo
    assert consent.photo_image(db, report.photo_ids[0], finder.id)  # and the finder the owner's
    with pytest.raises(Forbidden):
        consent.photo_image(db, report.photo_ids[0], other_dog.reporter_id + 1000)
    subjects = {n.user_id: n.subject for n in notifications.inbox(db, owner.id) + notifications.inbox(db, finder.id)}
    assert subjects == {owner.id: "A found dog may be Rex", finder.id: "The dog you found may be Rex"}


def test_a_new_lost_report_is_matched_against_recent_found_reports(db, owner):
    finder = accounts.create_user(db, "finder@example.org")
    found, _ = reports.create_found_report(
        db, finder.id, species="dog", photos=list(dog_photos("182", 2)), lat=LAST_SEEN_POINT.lat,
        lon=LAST_SEEN_POINT.lon, found_at=LAST_SEEN + timedelta(minutes=40), now=NOW, **models())
    report, _ = lost(db, owner.id, photos=dog_photos("182", 4), pet_name="Rex")
    assert [m.found_report_id for m in consent.found_matches(db, owner.id, lost_report_id=report.id)] == [found.id]
    assert consent.progress(db, report.id, owner.id).found_matches == 1


def test_only_an_approved_shelter_posts_intakes_and_sees_lost_reports_in_its_area(db, owner):
    report, _ = lost(db, owner.id)
    shelter = accounts.register_shelter(db, "desk@shelter.example", None, name="Northside Shelter",
                                     lat=place(0, 8000).lat, lon=place(0, 8000).lon,
                                     service_radius_m=10_000)
    intake = dict(species="dog", photos=list(dog_photos(LOST_DOG, 1)), lat=place(0, 8000).lat,
                  lon=place(0, 8000).lon, found_at=NOW - timedelta(minutes=10), now=NOW,
                  as_shelter=True, **models())
    with pytest.raises(Forbidden, match="waiting"):  # tried: an intake before approval
        reports.create_found_report(db, shelter.user_id, **intake)
    with pytest.raises(Forbidden):
        reports.shelter_dashboard(db, shelter.user_id)
    admin = accounts.create_user(db, "admin@example.org", role="admin")
    accounts.approve_shelter(db, shelter.user_id, admin.id)
    assert [r.id for r in reports.shelter_dashboard(db, shelter.user_id)] == [report.id]
    assert consent.photo_image(db, report.photo_ids[0], shelter.user_id)
    found, _ = reports.create_found_report(db, shelter.user_id, **intake)
    (match,) = consent.found_matches(db, owner.id, lost_report_id=report.id)
    assert found.source == "shelter" and match.source == "shelter"
    far = accounts.register_shelter(db, "far@shelter.example", None, name="Far Shelter",
                                 lat=place(0, 60_000).lat, lon=place(0, 60_000).lon,
                                 service_radius_m=20_000)
    accounts.approve_shelter(db, far.user_id, admin.id)
    assert reports.shelter_dashboard(db, far.user_id) == []  # outside its service area


def test_a_found_report_posted_twice_is_stored_once(db):
    finder = accounts.create_user(db, "finder@example.org")
    post = dict(species="dog", photos=list(dog_photos("182", 2)), lat=LAST_SEEN_POINT.lat,
                lon=LAST_SEEN_POINT.lon, found_at=NOW - timedelta(minutes=5), now=NOW, **models())
    first, created = reports.create_found_report(db, finder.id, **post)
    again, created_again = reports.create_found_report(db, finder.id, **post)  # tried: posted twice
    assert created and not created_again and again.id == first.id
    assert stored_counts(db)["found_reports"] == 1
    closed = reports.close_found_report(db, first.id, finder.id)
    assert closed.status == "closed"


def test_deleting_a_lost_report_deletes_its_photos_and_vectors(db, owner):
    report, _ = lost(db, owner.id)
    stranger = accounts.create_user(db, "stranger@example.org")
    with pytest.raises(Forbidden):  # tried: someone else deleting it
        reports.delete_lost_report(db, report.id, stranger.id)
    reports.delete_lost_report(db, report.id, owner.id)
    assert set(stored_counts(db).values()) == {0}


def test_names_passed_into_sql_text_are_only_those_listed(db, owner):
    """Tried: SQL in place of the column of report_photo_ids (before, it listed every report's
    photos), another table and SQL in place of _near's search, and a table with the wrong
    reporter column for _existing; each is refused before any SQL runs."""
    report, _ = lost(db, owner.id)
    other = accounts.create_user(db, "other@example.org")
    lost(db, other.id, pet_name="Max", submission_key="other")
    assert consent.report_photo_ids(db, "lost_report_id", report.id) == report.photo_ids
    for column in ("lost_report_id = lost_report_id OR 1 = 1 OR lost_report_id", "id", "image"):
        with pytest.raises(ValueError, match="is not one of"):
            consent.report_photo_ids(db, column, report.id)
    for query in ("users", "lost_reports", "active lost; DROP TABLE users"):
        with pytest.raises(ValueError, match="is not one of"):
            reports._near(db, query, [], LAST_SEEN_POINT, 1000)
    assert reports._near(db, "active lost", [], LAST_SEEN_POINT, 1000) == [report.id, report.id + 1]
    with pytest.raises(ValueError, match="is not one of"):
        reports._existing(db, "users", "id", owner.id, "k")
    with pytest.raises(ValueError, match="reporter_id"):
        reports._existing(db, "found_reports", "owner_id = owner_id OR 1 = 1 OR owner_id", owner.id, "k")
    assert db.table("users").count == 2
