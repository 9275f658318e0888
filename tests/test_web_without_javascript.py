"""The report pages as a browser without JavaScript uses them (plain form posts, which is what
the test client sends): an unreadable photo brings the form back with everything typed, and a
time typed without the page's script is read in the visitor's time zone, never silently as UTC.
The same in a real browser with JavaScript off: tests/test_browser_story.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from owner_world import FINDER_PHOTO, account, report_id_of, report_lost
from web_helpers import app_config, db_of, post

from search_party.community import reports
from web import create_app


def test_an_unreadable_photo_brings_the_wizard_back_with_what_was_typed(app, tmp_path):
    """Tried: a text file, and a JPEG cut in half, as the lost dog's photo."""
    owner = account(app, "owner@example.org")
    cut = tmp_path / "half.jpg"
    cut.write_bytes(FINDER_PHOTO.read_bytes()[:2000])
    text = tmp_path / "dog.jpg"
    text.write_text("not a photo at all")
    for photo in (text, cut):
        page = report_lost(owner, photo=photo, pet_name="Biscuit the beagle", description="white socks")
        body = page.get_data(as_text=True)
        assert page.status_code == 400 and 'id="report-wizard"' in body  # the wizard, not an error page
        assert 'value="Biscuit the beagle"' in body and "white socks" in body and 'value="51.5007"' in body
        assert "choose the photos again" in body
    with db_of(app) as db:
        assert reports.list_lost_reports(db) == []


def test_a_time_typed_without_javascript_is_read_in_the_chosen_or_the_neighbourhoods_zone(settings):
    """Tried: 10:30 typed with no offset from the page's script, once with New York chosen in
    the page's time-zone list, once with nothing chosen on a server for Europe/London (before,
    both were read as 10:30 UTC), and once with a zone that does not exist."""
    app = create_app(app_config(settings.model_copy(update={"time_zone": "Europe/London"})))
    owner = account(app, "owner@example.org")
    page = owner.get("/reports/new").get_data(as_text=True)
    assert "<noscript>" in page and '<option selected value="Europe/London">' in page
    day = (datetime.now(UTC) - timedelta(days=2)).date()
    typed = f"{day}T10:30"
    new_york = report_id_of(report_lost(owner, last_seen=typed, utc_offset="", time_zone="America/New_York",
                                        submission_key="ny"))
    london = report_id_of(report_lost(owner, last_seen=typed, utc_offset="", submission_key="ldn"))
    with db_of(app) as db:
        for report_id, zone in ((new_york, "America/New_York"), (london, "Europe/London")):
            expected = datetime(day.year, day.month, day.day, 10, 30, tzinfo=ZoneInfo(zone))
            assert reports.get_lost_report(db, report_id).last_seen == expected
    nowhere = report_lost(owner, last_seen=typed, utc_offset="", time_zone="Mars/Olympus", submission_key="x")
    assert nowhere.status_code == 400 and "is not a time zone" in nowhere.get_data(as_text=True)
    found = post(owner, "/found/new", {"species": "dog", "lat": "51.5", "lon": "-0.12", "found_at": typed,
                                       "time_zone": "Mars/Olympus"})
    assert found.status_code == 400 and "is not a time zone" in found.get_data(as_text=True)
