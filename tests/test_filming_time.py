"""When a clip was filmed: camera file-name patterns (real names as each maker writes them), time
zones (summer time, the repeated autumn hour), which source wins, and the whole path through the
upload API, the real pipeline and the clip page where the owner sees and corrects it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
from web_helpers import DOG_CLIP, api, db_of, post, process_clip_now

from search_party.community import cameras
from search_party.community.filming_time import (
    check_time_zone,
    choose_start,
    read_name,
    time_from_name,
    to_utc,
)
from search_party.errors import UserError
from search_party.store import storage

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(("name", "maker", "local"), [
    # Reolink camera SD card / NVR (main and sub stream), and the newer form with a DST flag.
    ("RecM01_20220306_020024_020118_6732828_2821E4C.mp4", "Reolink", datetime(2022, 3, 6, 2, 0, 24)),
    ("RecS03_20230815_143015_143045_6D28808_1A2B3C.mp4", "Reolink", datetime(2023, 8, 15, 14, 30, 15)),
    ("RecM0A_DST20261001_211129_211209_0_5514C080000000_66A92E.mp4", "Reolink", datetime(2026, 10, 1, 21, 11, 29)),
    # Reolink FTP upload: device name, channel, time.
    ("Front Door_00_20230815143015.mp4", "Reolink", datetime(2023, 8, 15, 14, 30, 15)),
    # Hikvision FTP/NAS: IP, channel, time with milliseconds, event.
    ("192.168.0.64_01_20190319093422939_MOTION_DETECTION.mp4", "Hikvision", datetime(2019, 3, 19, 9, 34, 22)),
    ("10.11.37.189_01_20150917094425492.mp4", "Hikvision", datetime(2015, 9, 17, 9, 44, 25)),
    # Blue Iris's default &CAM.%Y%m%d_%H%M%S.
    ("driveway.20230815_143015.mp4", "Blue Iris", datetime(2023, 8, 15, 14, 30, 15)),
    # Frigate: an export, and the download button's 24-hour name.
    ("front_door_20240601_081500-20240601_081530_ab12cd.mp4", "Frigate", datetime(2024, 6, 1, 8, 15)),
    ("front_door_06-01-24-08-15-00.mp4", "Frigate", datetime(2024, 6, 1, 8, 15)),
])
def test_camera_file_names_give_their_local_time(name, maker, local):
    found = read_name(name)
    assert found is not None and found.maker == maker and found.local == local and found.utc is None


def test_a_frigate_event_id_is_a_unix_time_and_needs_no_zone():
    found = read_name("front_door-1607123955.475377-mxklsc.mp4")
    assert found is not None and found.maker == "Frigate"
    assert found.utc == datetime(2020, 12, 4, 23, 19, 15, 475377, tzinfo=UTC)
    assert time_from_name("1607123955.475377-mxklsc.mp4", (None,), NOW) == found.utc


@pytest.mark.parametrize("name", [
    "dog_puppy_indoor_4s_480p.mp4", "clip.mp4", "IMG_1234.MOV", "RecM01_20221306_020024_020118_1_2.mp4",
    "driveway.20231315_143015.mp4", "holiday 2023.mp4", "20230815.mp4", "../../etc/passwd",
])
def test_names_without_a_known_pattern_or_with_an_impossible_date_give_nothing(name):
    """Tried: ordinary names, month 13, a bare date, a path."""
    assert read_name(name) is None


def test_local_names_are_read_in_the_cameras_zone_and_never_without_one():
    name = "driveway.20230815_143015.mp4"  # 14:30:15 in Berlin, summer: UTC+2
    assert time_from_name(name, (BERLIN, "America/New_York"), NOW) == datetime(2023, 8, 15, 12, 30, 15, tzinfo=UTC)
    assert time_from_name(name, (None, "America/New_York"), NOW) == datetime(2023, 8, 15, 18, 30, 15, tzinfo=UTC)
    assert time_from_name(name, (None, None), NOW) is None  # no zone: not guessed
    assert time_from_name("driveway.20291231_235959.mp4", (BERLIN,), NOW) is None  # in the future


def test_the_repeated_autumn_hour_follows_reolinks_dst_flag():
    # 2026-10-25 02:30 happens twice in Berlin: first in summer time (UTC+2), then in winter time.
    local = datetime(2026, 10, 25, 2, 30)
    assert to_utc(local, BERLIN, dst=True) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert to_utc(local, BERLIN, dst=False) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    summer = time_from_name("RecM0A_DST20261025_023000_023030_0_5514C0_66A92E.mp4", (BERLIN,), NOW)
    winter = time_from_name("RecM0A_20261025_023000_023030_0_5514C0_66A92E.mp4", (BERLIN,), NOW)
    assert (summer, winter) == (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC))


def test_time_zone_names_are_checked():
    """Tried: an unknown zone, an abbreviation, a path, an empty value."""
    assert check_time_zone(" Europe/Berlin ") == BERLIN and check_time_zone("") is None
    for bad in ("Mars/Olympus", "../../etc/passwd", "CEST; drop table"):
        with pytest.raises(UserError, match="time zone"):
            check_time_zone(bad)


def test_which_source_wins():
    stated, container, named, dated = (NOW - timedelta(hours=h) for h in (1, 2, 3, 4))
    assert choose_start(given=(stated, "given"), container=container, file_date=dated) == (stated, "given")
    assert choose_start(given=(stated, "neighbour"), container=container, file_date=dated) == (stated, "neighbour")
    assert choose_start(given=(named, "file name"), container=container, file_date=dated) == (container, "container")
    assert choose_start(given=(named, "file name"), container=None, file_date=dated) == (named, "file name")
    assert choose_start(given=None, container=None, file_date=dated) == (dated, "file date")


def test_upload_reads_the_name_in_the_cameras_zone_and_the_owner_corrects_it(neighbour, app, settings, tmp_path):
    """A Blue Iris clip uploaded from a browser in New York to a camera set to Berlin: the
    camera's zone wins; the clip page says the time came from the file name.  Then a plain
    copy (no pattern, no container time): the page says it is only the file's date and asks;
    the owner sets it, and the sighting's times move with it."""
    client, camera_id = neighbour.client, neighbour.camera_id
    assert post(client, f"/cameras/{camera_id}/time-zone", {"time_zone": BERLIN}).status_code == 302
    named = tmp_path / "driveway.20250601_081500.mp4"
    shutil.copy(DOG_CLIP, named)
    with named.open("rb") as fh:
        reply = api(client, "POST", f"/api/cameras/{camera_id}/clips", content_type="multipart/form-data",
                    data={"clip": (fh, named.name), "time_zone": "America/New_York"})
    clip = reply.get_json()["clips"][0]
    assert (clip["start_time"], clip["start_source"]) == ("2025-06-01T06:15:00+00:00", "file name")
    done = process_clip_now(settings, clip["id"])  # the puppy clip holds no creation time
    assert done.start_source == "file name" and done.start_time == datetime(2025, 6, 1, 6, 15, tzinfo=UTC)
    page = client.get(f"/clips/{clip['id']}").get_data(as_text=True)
    assert "the camera's file name, read in Europe/Berlin" in page

    copied = tmp_path / "copy of the puppy.mp4"
    copied.write_bytes(DOG_CLIP.read_bytes() + b"\0")  # new bytes: a new clip
    with copied.open("rb") as fh:
        reply = api(client, "POST", f"/api/cameras/{camera_id}/clips", content_type="multipart/form-data",
                    data={"clip": (fh, copied.name), "modified": "1764000000"})
    copy_id = reply.get_json()["clips"][0]["id"]
    done = process_clip_now(settings, copy_id)
    assert done.start_source == "file date" and done.sightings_count
    page = client.get(f"/clips/{copy_id}").get_data(as_text=True)
    assert "only the file's date, which a copy resets: please check it" in page
    with db_of(app) as db:
        before = storage.list_sightings(db, clip_id=copy_id)[0]
    # The owner's browser is at UTC+2 and types 2025-05-31 19:00:00 local.
    answer = post(client, f"/clips/{copy_id}/filmed-at", {"filmed_at": "2025-05-31T19:00:00", "offset_minutes": "120"})
    assert answer.status_code == 302
    with db_of(app) as db:
        fixed = storage.get_clip(db, copy_id)
        after = storage.list_sightings(db, clip_id=copy_id)[0]
    assert (fixed.start_time, fixed.start_source) == (datetime(2025, 5, 31, 17, 0, tzinfo=UTC), "neighbour")
    assert after.first_time - fixed.start_time == before.first_time - done.start_time  # moved with it
    assert "entered by you" in client.get(f"/clips/{copy_id}").get_data(as_text=True)


def test_bad_corrections_change_nothing(neighbour, app, settings, tmp_path, signed_in):
    """Tried: not a time, an absurd offset, a time in the future, another owner's clip."""
    client, camera_id = neighbour.client, neighbour.camera_id
    with DOG_CLIP.open("rb") as fh:
        reply = api(client, "POST", f"/api/cameras/{camera_id}/clips", content_type="multipart/form-data",
                    data={"clip": (fh, DOG_CLIP.name)})
    clip_id = reply.get_json()["clips"][0]["id"]
    for form, message in (({"filmed_at": "yesterday"}, "is not a date and time"),
                          ({"filmed_at": "2025-05-31T19:00", "offset_minutes": "9999"}, "impossible time zone"),
                          ({"filmed_at": "2099-01-01T00:00"}, "is not a time this clip")):
        page = post(client, f"/clips/{clip_id}/filmed-at", form, follow_redirects=True).get_data(as_text=True)
        assert message in page
    other = signed_in("other.owner@example.org")
    assert post(other, f"/clips/{clip_id}/filmed-at", {"filmed_at": "2025-05-31T19:00"}).status_code == 404
    with db_of(app) as db:
        assert storage.get_clip(db, clip_id).start_source is None
        with pytest.raises(UserError, match="Mars"):
            cameras.set_time_zone(db, camera_id, neighbour.user_id, "Mars/Olympus")
