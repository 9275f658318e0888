"""Metadata never outlives an upload: GPS, camera make and model, times, XMP, ICC profiles and
comments are stripped from every stored photo and crop (issue 6, "EXIF and metadata").

A real dog photo (the fixture's zamba porch dog) and a real clip with a real dog (the fixture's
puppy clip) are given the metadata a phone or a camera writes; they go through the real report
wizard and the real ingest; then every stored image is opened and every file the instance keeps
is searched for the metadata's values.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import av
import pytest
from domain_world import LAST_SEEN, NOW, models, settings_for
from PIL import Image, ImageCms
from pillow_heif import register_heif_opener

from search_party.community import accounts, cameras, reports
from search_party.ingest import clip_task, spool
from search_party.measure.privacy_audit import has_metadata
from search_party.store.db import open_db

register_heif_opener()

MAKE, MODEL = "AcmePhone", "Acme 12 Pro"  # values searched for, byte by byte, afterwards
GPS_TEXT = "+51.5007-000.1246/"
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
       b'syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="AcmePhone"/>'
       b'</rdf:RDF></x:xmpmeta>')


def phone_exif() -> Image.Exif:
    """What a phone writes: make, model, time, software and a GPS position in London."""
    exif = Image.Exif()
    exif[0x010F] = MAKE
    exif[0x0110] = MODEL
    exif[0x0132] = "2025:06:01 09:00:00"
    exif[0x0131] = "AcmeOS 18.1"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 2.52), 3: "W", 4: (0.0, 7.0, 28.56), 5: 0, 6: 12.0}
    return exif


def with_metadata(photo: Path, fmt: str) -> bytes:
    img = Image.open(photo).convert("RGB")
    out = io.BytesIO()
    if fmt == "JPEG":
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        img.save(out, format="JPEG", exif=phone_exif(), xmp=XMP, comment=f"{MAKE} {MODEL}", quality=92,
                 icc_profile=icc)
    else:
        img.save(out, format="HEIF", exif=phone_exif().tobytes(), quality=90)
    data = out.getvalue()
    reread = Image.open(io.BytesIO(data))
    assert reread.getexif()[0x010F] == MAKE and reread.getexif().get_ifd(0x8825)  # the input has it
    return data


def assert_clean(image: bytes) -> None:
    assert not has_metadata(image)
    with Image.open(io.BytesIO(image)) as img:
        assert img.format == "JPEG" and not img.getexif()
    for value in (MAKE.encode(), MODEL.encode(), b"AcmeOS", b"GPS", b"2025:06:01"):
        assert value not in image


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "sp.db")


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF"])
def test_a_report_photo_with_gps_and_device_exif_is_stored_without_it(db, fixtures, fmt):
    """Tried: a phone photo (JPEG with EXIF, GPS, XMP and a comment; HEIC with EXIF and GPS)."""
    photo = with_metadata(fixtures / "images" / "zamba_dog_porch.jpg", fmt)
    owner = accounts.create_user(db, "owner@example.org")
    lost, _ = reports.create_lost_report(db, owner.id, pet_name="Rex", species="dog", photos=[photo],
                                         lat=51.5007, lon=-0.1246, last_seen=LAST_SEEN, now=NOW, **models())
    finder = accounts.create_user(db, "finder@example.org")
    found, _ = reports.create_found_report(db, finder.id, species="dog", photos=[photo], lat=51.5007,
                                           lon=-0.1246, found_at=NOW - timedelta(minutes=5), now=NOW,
                                           **models())
    stored = [r[0] for r in db.execute("SELECT image FROM report_photos")]
    assert len(stored) == 2 and len(lost.photo_ids) == len(found.photo_ids) == 1
    for image in stored:
        assert_clean(image)


def test_a_clip_with_location_and_device_tags_leaves_no_trace_in_the_instance(tmp_path, fixtures):
    """Tried: the real puppy clip remuxed with the location, make and model tags a phone writes.
    After ingest, no file the instance keeps (database, WAL, index, spool) holds those values,
    and the stored crop has no metadata."""
    clip = tmp_path / "puppy_with_tags.mp4"
    with av.open(str(fixtures / "videos" / "dog_puppy_indoor_4s_480p.mp4")) as source, \
            av.open(str(clip), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update({"location": GPS_TEXT, "make": MAKE, "model": MODEL,
                             "com.apple.quicktime.location.ISO6709": GPS_TEXT})
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    assert GPS_TEXT.encode() in clip.read_bytes() and MAKE.encode() in clip.read_bytes()

    settings = settings_for(tmp_path / "instance")
    with open_db(settings.db_path) as db:
        owner = accounts.create_user(db, "neighbour@example.org")
        camera = cameras.opt_in(db, cameras.register_camera(db, owner.id, lat=51.5, lon=-0.12).id, owner.id)
        submission = spool.register_clip(settings, db, clip, camera.id)
        done = clip_task.run_clip(settings, submission.clip.id, "test:exif")
        assert done.status == "done" and done.sightings_count >= 1
        for (thumbnail,) in db.execute("SELECT thumbnail FROM sightings"):
            assert_clean(thumbnail)
    kept = [p for p in settings.data_dir.rglob("*") if p.is_file() and not p.is_symlink()
            and "models" not in p.relative_to(settings.data_dir).parts]
    assert kept, "the instance keeps its database"
    for path in kept:
        data = path.read_bytes()
        for value in (GPS_TEXT.encode(), MAKE.encode(), MODEL.encode()):
            assert value not in data, f"{value!r} survived in {path.relative_to(settings.data_dir)}"
