"""The privacy audit: real person photos and footage through the real ingest and report wizard,
then a count of what a person could have left behind (invariant 1 of DESIGN.md).

Every image and video of the data is run, in a scratch Search Party instance (its own data
folder, database and spool, deleted afterwards), through:

- the lost-report wizard (``reports.create_lost_report``), once as a dog and once as a cat: a
  person-only photo must be refused both times;
- the full ingest (``spool.register_clip`` then ``clip_task.run_clip``, as the worker runs it): each
  video as it is, and each image as a short clip panning across it, so a person photo is also
  tried as camera footage.

No file of the data shows a dog among people, so each person image is also run once more with a
real dog photo pasted into it (a *composite*): the case where a stored crop and a person meet.

The models are given to the ingest task and the wizard wrapped (search_party.measure.model_inputs),
so every crop handed to the re-ID embedder and to the species head is recorded at the call.  Then
those crops and everything stored are checked against the pixels they came from.  Person boxes
come from *every* detector the project ships, not only the one ingest used, so a person that
ingest's detector missed still counts.

- **person vectors**: each recorded crop is found again on its photo or on a frame of its clip
  (the pet box whose crop equals it), and measured there (``model_inputs.measure``): it shows a
  person when more than ``PERSON_SHARE_LIMIT`` of it is person pixels (of the person boxes
  beside the pet, and of the pet box itself when that is a person box, IoU >=
  ``SAME_OBJECT_IOU``) that the model received sharp.  Every re-ID crop's vector is stored, so
  each such crop is a stored person vector, composites included; a species-head crop showing a
  person fails the audit too.  The stored box of each sighting is also checked on its frame: the frame whose crop
  looks most like the stored thumbnail, confirmed by the detector giving the stored box on it;
- **redaction**: of the person-box pixels inside each stored image, the share ingest's redaction
  blurred.  Which pixels a redaction blurs is measured by running the real ``blur_regions`` over a
  one-pixel checkerboard with the boxes ingest used: a blurred pixel turns grey, an untouched one
  stays black or white.  The same share is measured over whole frames of the person data (every
  image, video frames once a second), as if every frame were stored.  Each stored image is also
  searched for persons again: one found outside the blurred regions is a person left visible;
- **metadata**: every stored image is checked for EXIF, XMP, ICC profiles and comments.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from embeddings.detector import DETECTORS, PetDetector
from embeddings.embedder import CROP_MARGIN, crop_box
from embeddings.images import load_image, load_rgb
from embeddings.redact import blur_regions
from embeddings.runtime import Runtime
from search_party import vision
from search_party.clip_types import VIDEO_EXTENSIONS
from search_party.community import accounts, cameras, reports
from search_party.config import PROJECT_ROOT, Settings
from search_party.errors import ImageError, UserError
from search_party.ingest import clip_task, spool
from search_party.ingest.options import IngestOptions
from search_party.ingest.tracking import box_iou
from search_party.ingest.video.decode import decode_frames, probe_clip, upright_rgb
from search_party.measure.model_inputs import (
    PERSON_SHARE_LIMIT,
    REID,
    SAME_OBJECT_IOU,
    SPECIES,
    Box,
    Handed,
    InputCheck,
    Recording,
    Rect,
    box_mask,
    crop_rect,
    cut,
    locate,
)
from search_party.store import storage
from search_party.store.db import open_db, utcnow

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff")
VISIBLE_PERSON_BLURRED = 0.5  # a person found on a stored image less blurred than this is visible
FRAME_MATCH_IOU = 0.9  # the re-found frame's pet box must be (almost) the stored box
FRAME_CANDIDATES = 4  # frames whose crop looks most like the thumbnail, tried with the detector
PERSON_FRAMES_PER_SECOND = 1.0  # video frames of the person data measured for redaction
STILL_CLIP_SECONDS, STILL_CLIP_FPS, STILL_CLIP_PAN = 4.0, 8, 0.15
MAX_STILL_SIDE = 1280  # a still is filmed at a camera's resolution, not a phone photo's
AUDIT_PLACE = (51.5007, -0.1246)  # where the scratch camera and reports are; any place would do
DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
FIXTURE_DIR = PROJECT_ROOT / "tests" / "fixtures"
# A whole-body MPDD dog (CC BY 4.0, see the fixture's ATTRIBUTION.md), pasted among people.
COMPOSITE_DOG = FIXTURE_DIR / "reid" / "mpdd" / "177" / "train__177_c1s1_3.jpg"
COMPOSITE_DOG_HEIGHT = 0.4  # of the person image's height


@dataclass(frozen=True)
class Source:
    """One file the audit runs: ``person_only`` when its folder holds people and no animals.
    With ``dog``, the image is first composed with that dog photo pasted into its lower left
    corner (a composite)."""

    path: Path
    kind: str  # 'image' | 'video'
    person_only: bool
    dog: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.path} + dog" if self.dog else str(self.path)


@dataclass
class ImageOutcome:
    source: str
    person_only: bool
    composite: bool
    refused: bool
    reason: str  # why it was refused, or which species it was accepted as


@dataclass
class ClipOutcome:
    source: str
    source_kind: str  # 'video', or 'image' for a still turned into a panning clip
    person_only: bool
    composite: bool
    status: str
    sightings: int
    reason: str | None = None


@dataclass
class PixelTally:
    person_pixels: int = 0
    blurred: int = 0

    def add(self, other: PixelTally) -> None:
        self.person_pixels += other.person_pixels
        self.blurred += other.blurred

    @property
    def share(self) -> float | None:
        return self.blurred / self.person_pixels if self.person_pixels else None


@dataclass
class VectorCheck:
    """One stored vector's box and its stored image against the person boxes on its own frame
    or photo; the measures are None when the frame could not be found again."""

    kind: str  # 'sighting' | 'report photo'
    source: str
    composite: bool
    label: str
    person_iou: float | None = None  # the stored pet box against the best-overlapping person box
    visible_persons: int = 0  # persons found on the stored image outside the blurred regions
    redaction: PixelTally = field(default_factory=PixelTally)  # in the stored image

    @property
    def verified(self) -> bool:
        return self.person_iou is not None

    @property
    def pet_is_a_person(self) -> bool:
        return self.person_iou is not None and self.person_iou >= SAME_OBJECT_IOU


@dataclass
class AuditReport:
    detector: str
    embedder: str
    images: list[ImageOutcome] = field(default_factory=list)
    clips: list[ClipOutcome] = field(default_factory=list)
    vectors: list[VectorCheck] = field(default_factory=list)
    inputs: list[InputCheck] = field(default_factory=list)  # every crop handed to a model
    person_data_redaction: PixelTally = field(default_factory=PixelTally)
    stored_images: int = 0
    stored_images_with_metadata: int = 0

    def _vectors(self, composite: bool | None) -> list[VectorCheck]:
        return [v for v in self.vectors if composite is None or v.composite == composite]

    @property
    def person_images(self) -> int:
        return sum(i.person_only for i in self.images)

    @property
    def person_images_refused(self) -> int:
        return sum(i.person_only and i.refused for i in self.images)

    def model_inputs(self, model: str, composite: bool | None = None) -> list[InputCheck]:
        return [i for i in self.inputs if i.model == model and (composite is None or i.composite == composite)]

    def person_vectors(self, composite: bool | None = False) -> int:
        """Re-ID crops showing a person (each one's vector is stored), from the data (default),
        the composites, or both (None)."""
        return sum(i.shows_a_person for i in self.model_inputs(REID, composite))

    def species_person_inputs(self) -> int:
        return sum(i.shows_a_person for i in self.model_inputs(SPECIES))

    @property
    def unlocated_inputs(self) -> int:
        return sum(not i.located for i in self.inputs)

    def pets_that_are_persons(self) -> int:
        return sum(v.pet_is_a_person for v in self.vectors)

    @property
    def unverified_vectors(self) -> int:
        return sum(not v.verified for v in self.vectors)

    @property
    def visible_persons(self) -> int:
        return sum(v.visible_persons for v in self.vectors)

    @property
    def stored_redaction(self) -> PixelTally:
        total = PixelTally()
        for vector in self.vectors:
            total.add(vector.redaction)
        return total

    @property
    def sightings_from_person_only_sources(self) -> int:
        return sum(c.sightings for c in self.clips if c.person_only)

    @property
    def passed(self) -> bool:
        """Invariant 1 on the data: every person-only photo refused, no crop handed to a model
        showing a person (so no person vector stored; composites included), no stored pet box
        that is a person, every vector and every handed crop checked, no person left visible on a
        stored image, no metadata kept."""
        return (self.person_images_refused == self.person_images
                and self.person_vectors(composite=None) == 0 and self.species_person_inputs() == 0
                and self.pets_that_are_persons() == 0 and self.unverified_vectors == 0
                and self.unlocated_inputs == 0
                and self.visible_persons == 0 and self.stored_images_with_metadata == 0)

    def as_dict(self) -> dict:
        stored = self.stored_redaction
        return {
            "detector": self.detector, "embedder": self.embedder, "passed": self.passed,
            "person_images": self.person_images, "person_images_refused": self.person_images_refused,
            "person_vectors_stored": self.person_vectors(),
            "composite_person_vectors": self.person_vectors(composite=True),
            "pets_that_are_persons": self.pets_that_are_persons(),
            "species_inputs_showing_a_person": self.species_person_inputs(),
            "vectors_checked": len(self.vectors), "unverified_vectors": self.unverified_vectors,
            "model_inputs_checked": len(self.inputs), "unlocated_model_inputs": self.unlocated_inputs,
            "same_object_iou": SAME_OBJECT_IOU, "person_share_limit": PERSON_SHARE_LIMIT,
            "visible_persons_on_stored_images": self.visible_persons,
            "sightings_from_person_only_sources": self.sightings_from_person_only_sources,
            "stored_redaction": {**asdict(stored), "share": stored.share},
            "person_data_redaction": {**asdict(self.person_data_redaction),
                                      "share": self.person_data_redaction.share},
            "stored_images": self.stored_images,
            "stored_images_with_metadata": self.stored_images_with_metadata,
            "images": [asdict(i) for i in self.images], "clips": [asdict(c) for c in self.clips],
            "vectors": [{**asdict(v), "pet_is_a_person": v.pet_is_a_person} for v in self.vectors],
            "model_inputs": [{**asdict(i), "sharp_share": i.sharp_share, "shows_a_person": i.shows_a_person}
                             for i in self.inputs],
        }


# ---------------------------------------------------------------- what is audited


def _files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def audit_sources(data_dir: Path, *, fixture_dir: Path | None = FIXTURE_DIR,
                  videos: bool = True) -> list[Source]:
    """Every image under ``data_dir/persons`` and video under ``data_dir/videos``, then the
    fixture's images and videos (a file whose content was already listed is left out), then each
    person image again with the fixture's ``COMPOSITE_DOG`` among the people."""
    if not (data_dir / "persons").is_dir():
        raise UserError(f"{data_dir} has no persons/ folder; give the shared data folder "
                        "(../shared/data), which holds persons/ and videos/")
    candidates = [Source(p, "image", True) for p in _files(data_dir / "persons", IMAGE_EXTENSIONS)]
    if videos:
        candidates += [Source(p, "video", False) for p in _files(data_dir / "videos", VIDEO_EXTENSIONS)]
    if fixture_dir is not None:
        candidates += [Source(p, "image", False) for p in _files(fixture_dir / "images", IMAGE_EXTENSIONS)]
        if videos:
            candidates += [Source(p, "video", False)
                           for p in _files(fixture_dir / "videos", VIDEO_EXTENSIONS)]
    seen: set[str] = set()
    sources = []
    for source in candidates:
        digest = hashlib.sha256(source.path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            sources.append(source)
    return sources + [Source(s.path, "image", False, COMPOSITE_DOG) for s in sources if s.person_only]


# ---------------------------------------------------------------- pixels and boxes


def blurred_mask(shape: tuple[int, int], person_boxes: Sequence[Box]) -> np.ndarray:
    """Which pixels the real redaction blurs for these boxes: ``blur_regions`` run over a
    one-pixel checkerboard turns every blurred pixel grey and leaves the rest black or white."""
    height, width = shape
    checker = ((np.indices((height, width)).sum(0) % 2) * 255).astype(np.uint8)
    board = np.repeat(checker[:, :, None], 3, axis=2)
    changed = np.abs(blur_regions(board, person_boxes).astype(np.int16) - board).max(axis=2)
    return changed > 32


def has_metadata(jpeg: bytes) -> bool:
    """Whether an image carries EXIF (GPS, camera make and model, times), XMP, an ICC profile or
    a comment."""
    with Image.open(io.BytesIO(jpeg)) as img:
        kept = set(img.info) & {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"}
        return bool(kept or img.getexif()) or b"Exif\x00\x00" in jpeg or b"http://ns.adobe.com/xap" in jpeg


class _Eyes:
    """Ingest's detector, for the boxes ingest itself used, and every detector the project ships
    (loaded here, whatever the audited models are), for the person boxes the audit measures
    against."""

    def __init__(self, ingest_detector: PetDetector, runtime: Runtime) -> None:
        self.ingest = ingest_detector
        self.reference = [PetDetector.cached(name, runtime) for name in DETECTORS]

    def persons(self, rgb: np.ndarray) -> list[Box]:
        return [box for detector in self.reference for box in detector.person_boxes(rgb)]

    def tally(self, rgb: np.ndarray) -> PixelTally:
        """Person-box pixels of a whole frame, and how many ingest's redaction blurs."""
        people = box_mask(rgb.shape[:2], self.persons(rgb))
        blurred = blurred_mask(rgb.shape[:2], self.ingest.person_boxes(rgb))
        return PixelTally(int(people.sum()), int((people & blurred).sum()))

    def check(self, check: VectorCheck, rgb: np.ndarray, pet_box: Box, shown: Rect,
              stored_jpeg: bytes) -> None:
        """Fill in ``check`` for a vector stored with ``pet_box`` of ``rgb`` and an image stored
        from its ``shown`` crop."""
        shape = rgb.shape[:2]
        persons = self.persons(rgb)
        people = box_mask(shape, persons)
        blurred = blurred_mask(shape, self.ingest.person_boxes(rgb))
        check.person_iou = max((box_iou(pet_box, p) for p in persons), default=0.0)
        check.redaction = PixelTally(int(cut(people, shown).sum()), int(cut(people & blurred, shown).sum()))
        left, top = shown[:2]
        pet_in_shown = (pet_box[0] - left, pet_box[1] - top, pet_box[2] - left, pet_box[3] - top)
        check.visible_persons = self._visible_persons(stored_jpeg, cut(blurred, shown), pet_in_shown)

    def _visible_persons(self, stored_jpeg: bytes, blurred: np.ndarray, pet_box: Box) -> int:
        """Persons any detector finds on the stored image that lie mostly outside the regions
        ingest blurred (a blurred person may still be found: its outline survives, its face does
        not).  A "person" that is the pet's own box is the pet seen small; whether the pet is a
        person was decided on the full frame (``person_iou``)."""
        stored = load_rgb(stored_jpeg)
        scale_y, scale_x = blurred.shape[0] / stored.shape[0], blurred.shape[1] / stored.shape[1]
        visible = 0
        for detector in self.reference:
            for x1, y1, x2, y2 in detector.person_boxes(stored):
                found = (x1 * scale_x, y1 * scale_y, x2 * scale_x, y2 * scale_y)
                if box_iou(found, pet_box) >= SAME_OBJECT_IOU:
                    continue
                region = cut(blurred, (int(found[0]), int(found[1]), int(np.ceil(found[2])),
                                        int(np.ceil(found[3]))))
                if region.size and region.mean() < VISIBLE_PERSON_BLURRED:
                    visible += 1
        return visible


# ---------------------------------------------------------------- the scratch instance


def composed_image(source: Source, out: Path) -> Path:
    """The source image with its dog pasted into the lower left corner, as a PNG (every pixel
    real: the scene and the dog are both photos)."""
    assert source.dog is not None, "only sources with a dog are composed"
    scene = load_image(source.path)
    dog = load_image(source.dog)
    height = max(16, round(scene.height * COMPOSITE_DOG_HEIGHT))
    dog = dog.resize((max(16, round(dog.width * height / dog.height)), height), Image.Resampling.LANCZOS)
    scene.paste(dog, (0, scene.height - height))
    scene.save(out, format="PNG")
    return out


def still_clip(image: Path, out: Path) -> Path:
    """A short H.264 clip panning slowly across a still image, so the motion test wakes the
    detector and a false track would travel, as footage of a real scene does."""
    still = load_image(image)
    still.thumbnail((MAX_STILL_SIDE, MAX_STILL_SIDE), Image.Resampling.LANCZOS)
    rgb = np.asarray(still)
    height, width = rgb.shape[:2]
    win_w, win_h = (int(width * (1 - STILL_CLIP_PAN)) // 2) * 2, (int(height * (1 - STILL_CLIP_PAN)) // 2) * 2
    frames = round(STILL_CLIP_SECONDS * STILL_CLIP_FPS)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(STILL_CLIP_FPS))
        stream.width, stream.height, stream.pix_fmt = win_w, win_h, "yuv420p"
        stream.options = {"preset": "veryfast"}
        for i in range(frames):
            step = i / max(1, frames - 1)
            x, y = round(step * (width - win_w)), round(step * (height - win_h))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[y:y + win_h, x:x + win_w]),
                                               format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out


class _Scratch:
    """A throw-away Search Party instance: data folder, database, one opted-in camera, and the
    models (``models``, default those the settings name) recorded at every embedding call."""

    def __init__(self, settings: Settings, work: Path, models: vision.Models | None) -> None:
        self.settings = settings.moved_to(work / "data")
        self.settings.prepare_dirs()
        self.db = open_db(self.settings.db_path)
        owner = accounts.create_user(self.db, "camera-owner@audit.invalid")
        camera = cameras.register_camera(self.db, owner.id, lat=AUDIT_PLACE[0], lon=AUDIT_PLACE[1],
                                         name="audit")
        self.camera_id = cameras.opt_in(self.db, camera.id, owner.id).id
        self.recording = Recording(models or vision.load_models(self.settings))
        self.models = self.recording.models
        self.clip_sources: dict[int, tuple[Path, str]] = {}
        self.reporters = 0

    def report(self, photo: Path, species: str, now: datetime) -> reports.LostReport:
        # One account per report, as many families would send them (and no daily quota is hit).
        self.reporters += 1
        user = accounts.create_user(self.db, f"reporter-{self.reporters}@audit.invalid")
        lat, lon = AUDIT_PLACE
        report, _ = reports.create_lost_report(
            self.db, user.id, pet_name="Audit", species=species, photos=[photo], lat=lat, lon=lon,
            last_seen=now - timedelta(hours=1), models=self.models, now=now)
        return report

    def ingest(self, clip: Path, name: str, start: datetime) -> storage.Clip:
        submission = spool.register_clip(self.settings, self.db, clip, self.camera_id, start)
        self.clip_sources[submission.clip.id] = (clip, name)
        if submission.needs_processing:
            clip_task.run_clip(self.settings, submission.clip.id, f"audit:{submission.clip.id}",
                               models=self.models)
        return storage.get_clip(self.db, submission.clip.id)


# ---------------------------------------------------------------- the checks


def _validate_photo(scratch: _Scratch, source: Source, photo: Path,
                    now: datetime) -> tuple[ImageOutcome, int | None]:
    """The photo as a lost dog's, then a lost cat's: the outcome, and the report id if stored."""
    reasons = []
    composite = source.dog is not None
    for species in ("dog", "cat"):
        try:
            stored = scratch.report(photo, species, now)
        except (UserError, ImageError) as exc:
            reasons.append(f"{species}: {exc}")
            continue
        accepted = ImageOutcome(source.name, source.person_only, composite, False, f"accepted as a {species}")
        return accepted, stored.id
    return ImageOutcome(source.name, source.person_only, composite, True, "; ".join(reasons)), None


def _find_frame(clip_path: Path, first: float, last: float, box: Box, thumbnail: bytes,
                detector: PetDetector) -> np.ndarray | None:
    """The frame of the clip, between ``first`` and ``last`` seconds, that the sighting's best crop
    was cut from: frames are ranked by how much their crop at the stored box looks like the stored
    thumbnail (cheap), and the detector must give the stored box on the frame taken (None if it
    gives it on none of the closest few)."""
    info = probe_clip(clip_path)
    stored = load_rgb(thumbnail).astype(np.float32)
    size = (stored.shape[1], stored.shape[0])
    margin = IngestOptions().crop_margin
    closest: list[tuple[float, int, np.ndarray]] = []
    for number, timed in enumerate(decode_frames(info)):
        if timed.seconds < first - 1e-3:
            continue
        if timed.seconds > last + 1e-3:
            break
        rgb = upright_rgb(timed.frame, info.rotation)
        crop = Image.fromarray(np.ascontiguousarray(crop_box(rgb, box, margin))).resize(size, Image.Resampling.BILINEAR)
        difference = float(np.abs(np.asarray(crop, np.float32) - stored).mean())
        closest = sorted([*closest, (difference, number, rgb)], key=lambda c: c[:2])[:FRAME_CANDIDATES]
    for _, _, rgb in closest:
        if any(box_iou(pet.box, box) >= FRAME_MATCH_IOU for pet in detector.predict(rgb)):
            return rgb
    return None


def _check_sightings(scratch: _Scratch, eyes: _Eyes, composites: set[Path], report: AuditReport) -> None:
    margin = IngestOptions().crop_margin
    for clip_id, (clip_path, name) in scratch.clip_sources.items():
        clip = storage.get_clip(scratch.db, clip_id)
        for sighting in storage.list_sightings(scratch.db, clip_id=clip_id):
            thumbnail = storage.thumbnail(scratch.db, sighting.id)
            check = VectorCheck("sighting", name, clip_path in composites, sighting.label)
            assert clip.start_time is not None, "a done clip has a start time"
            rgb = _find_frame(clip_path, (sighting.first_time - clip.start_time).total_seconds(),
                              (sighting.last_time - clip.start_time).total_seconds(), sighting.box,
                              thumbnail, eyes.ingest)
            if rgb is not None:
                eyes.check(check, rgb, sighting.box, crop_rect(rgb.shape[:2], sighting.box, margin), thumbnail)
            report.vectors.append(check)


def _check_report_photos(scratch: _Scratch, eyes: _Eyes, photos: dict[int, tuple[Path, Source]],
                         report: AuditReport) -> None:
    rows = scratch.db.execute("SELECT lost_report_id, image, label, box_x1, box_y1, box_x2, box_y2 "
                              "FROM report_photos ORDER BY id").fetchall()
    for report_id, image, label, *box in rows:
        path, source = photos[report_id]
        rgb = load_rgb(path)
        check = VectorCheck("report photo", source.name, source.dog is not None, label)
        eyes.check(check, rgb, box, crop_rect(rgb.shape[:2], box, reports.PHOTO_MARGIN), image)
        report.vectors.append(check)


@dataclass
class _Handover:
    """The crops the models were handed while one source went through the wizard ('report
    photo', ``path`` the photo) or ingest ('sighting', ``path`` the clip)."""

    kind: str
    source: Source
    path: Path
    crops: list[Handed]
    clip_id: int | None = None


def _sighting_frames(scratch: _Scratch, clip_id: int, clip_path: Path) -> Iterator[np.ndarray]:
    """The clip's frames over its sightings' time spans (every embedded crop is a sighting's)."""
    clip = storage.get_clip(scratch.db, clip_id)
    if clip.start_time is None:
        return
    spans = [((s.first_time - clip.start_time).total_seconds(), (s.last_time - clip.start_time).total_seconds())
             for s in storage.list_sightings(scratch.db, clip_id=clip_id)]
    info = probe_clip(clip_path)
    for timed in decode_frames(info):
        if any(first - 1e-3 <= timed.seconds <= last + 1e-3 for first, last in spans):
            yield upright_rgb(timed.frame, info.rotation)


def _check_model_inputs(scratch: _Scratch, eyes: _Eyes, handovers: Iterable[_Handover],
                        report: AuditReport) -> None:
    """Every recorded crop found again on its photo or frame and measured there."""
    detector = scratch.models.detector

    def photo_boxes(rgb: np.ndarray) -> tuple[list[Box], list[Box]]:
        return [p.box for p in detector.predict(rgb)], detector.person_boxes(rgb)

    def frame_boxes(rgb: np.ndarray) -> tuple[list[Box], list[Box]]:
        # Ingest runs the detector on the frame shrunk in its feed's thread: the same boxes.
        shrunk = detector.shrink(rgb)
        return [p.box for p in detector.predict(shrunk)], detector.person_boxes(shrunk)

    for handover in handovers:
        pending = [(InputCheck(h.model, handover.kind, handover.source.name, handover.source.dog is not None,
                               h.crop.shape[0] * h.crop.shape[1]), h.crop) for h in handover.crops]
        if not pending:
            continue
        if handover.clip_id is None:
            locate(pending, [load_rgb(handover.path)], photo_boxes, CROP_MARGIN, eyes.persons)
        else:
            locate(pending, _sighting_frames(scratch, handover.clip_id, handover.path), frame_boxes,
                   IngestOptions().crop_margin, eyes.persons)
        report.inputs.extend(check for check, _ in pending)


def _person_data_redaction(sources: Iterable[Source], eyes: _Eyes) -> PixelTally:
    """Redaction over whole frames of every image and of video frames once a second."""
    tally = PixelTally()
    for source in sources:
        if source.kind == "image":
            tally.add(eyes.tally(load_rgb(source.path)))
            continue
        info = probe_clip(source.path)
        due = 0.0
        for timed in decode_frames(info):
            if timed.seconds + 1e-6 >= due:
                tally.add(eyes.tally(upright_rgb(timed.frame, info.rotation)))
                due = timed.seconds + 1 / PERSON_FRAMES_PER_SECOND
    return tally


def run_audit(sources: Sequence[Source], settings: Settings, *, now: datetime | None = None,
              work_dir: Path | None = None, models: vision.Models | None = None) -> AuditReport:
    """Run ``sources`` through a scratch instance built from ``settings`` (detector, embedder,
    model cache) and count what the module docstring lists.  ``models``: the models audited,
    when not those the settings name (the audit's own test gives it models that fail on purpose).
    The scratch folder is deleted."""
    now = now or utcnow()
    work = Path(tempfile.mkdtemp(prefix="privacy-audit-", dir=work_dir))
    try:
        scratch = _Scratch(settings, work, models)
        eyes = _Eyes(scratch.models.detector, scratch.settings.vision_runtime())
        report = AuditReport(detector=scratch.models.detector.name, embedder=scratch.models.embedder.version)
        handovers: list[_Handover] = []
        photos: dict[int, tuple[Path, Source]] = {}
        composites: set[Path] = set()
        start = now.replace(microsecond=0) - timedelta(hours=1)
        made = work / "made"
        made.mkdir()
        for number, source in enumerate(sources):
            path = source.path
            if source.dog is not None:
                path = composed_image(source, made / f"{number:03d}-{path.stem}-with-dog.png")
            if source.kind == "image":
                outcome, report_id = _validate_photo(scratch, source, path, now)
                report.images.append(outcome)
                if report_id is not None:
                    photos[report_id] = (path, source)
                handovers.append(_Handover("report photo", source, path, scratch.recording.take()))
                clip_path = still_clip(path, made / f"{number:03d}-{path.stem}.mp4")
            else:
                clip_path = path
            if source.dog is not None:
                composites.add(clip_path)
            clip = scratch.ingest(clip_path, source.name, start + timedelta(minutes=number))
            handovers.append(_Handover("sighting", source, clip_path, scratch.recording.take(), clip.id))
            report.clips.append(ClipOutcome(source.name, source.kind, source.person_only,
                                            source.dog is not None, clip.status,
                                            clip.sightings_count or 0, clip.reason))
        _check_sightings(scratch, eyes, composites, report)
        _check_report_photos(scratch, eyes, photos, report)
        _check_model_inputs(scratch, eyes, handovers, report)
        stored = ([r[0] for r in scratch.db.execute("SELECT thumbnail FROM sightings")]
                  + [r[0] for r in scratch.db.execute("SELECT image FROM report_photos")])
        report.stored_images = len(stored)
        report.stored_images_with_metadata = sum(has_metadata(i) for i in stored)
        report.person_data_redaction = _person_data_redaction(
            [s for s in sources if s.dog is None and (s.person_only or s.kind == "video")], eyes)
        scratch.db.close()
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- the report


def _share(tally: PixelTally) -> str:
    if tally.share is None:
        return "no person pixels"
    return f"{tally.share:.1%} ({tally.blurred:,} of {tally.person_pixels:,} pixels)"


def _input_rows(report: AuditReport) -> list[str]:
    """One row per model and origin (the data, the composites) of the crops it was handed."""
    rows = [f"    {'model':<15} {'from':<11} {'crops':>5} {'found':>5} {'pet=person':>10} "
            f"{'person px':>10} {'sharp px':>9} {'largest':>8} {'> ' + format(PERSON_SHARE_LIMIT, '.0%'):>5}"]
    for model in (REID, SPECIES):
        for composite in (False, True):
            checks = report.model_inputs(model, composite)
            largest = max((c.sharp_share for c in checks), default=0.0)
            rows.append(f"    {model:<15} {'composites' if composite else 'data':<11} {len(checks):>5} "
                        f"{sum(c.located for c in checks):>5} {sum(c.pet_is_a_person for c in checks):>10} "
                        f"{sum(c.person_pixels for c in checks):>10,} "
                        f"{sum(c.sharp_person_pixels for c in checks):>9,} {largest:>8.2%} "
                        f"{sum(c.shows_a_person for c in checks):>5}")
    return rows


def summary_lines(report: AuditReport) -> list[str]:
    """The audit as a few lines a person reads (up to the first blank line), then one line per
    file."""
    reid = report.model_inputs(REID)
    lines = [
        f"privacy audit (detector {report.detector}, embedder {report.embedder}; person boxes from "
        f"{', '.join(DETECTORS)})",
        f"  person-only images refused by the report wizard  {report.person_images_refused} of "
        f"{report.person_images}",
        f"  sightings stored from person-only sources         {report.sightings_from_person_only_sources}",
        f"  stored pet boxes that are a person (IoU >= {SAME_OBJECT_IOU})   "
        f"{report.pets_that_are_persons()} of {len(report.vectors)} (composites included)",
        f"  vectors whose frame was not found again           {report.unverified_vectors}",
        f"  person-box pixels blurred in stored images        {_share(report.stored_redaction)}",
        f"  persons visible (unblurred) on stored images      {report.visible_persons}",
        f"  person-box pixels blurred on the person data      {_share(report.person_data_redaction)}"
        " (whole frames, as if each were stored)",
        f"  stored images with EXIF/XMP/ICC/comments          {report.stored_images_with_metadata} of "
        f"{report.stored_images}",
        "  crops handed to the models, recorded at the call and found again on their photo or frame",
        "  (pet=person: pet box is a person box; person px: person pixels, beside the pet or of a",
        "  pet=person box, whose redaction changes them; sharp px: those the model received within",
        "  a quarter of that change from the original; largest: sharp share of one crop; a crop over",
        "  the limit shows a person):",
        *_input_rows(report),
        f"  person vectors stored (re-ID crops showing a person)  {report.person_vectors(composite=None)} "
        f"of {len(reid)} (data {report.person_vectors()}, composites {report.person_vectors(composite=True)})",
        f"  species-head crops showing a person                   {report.species_person_inputs()} "
        f"of {len(report.model_inputs(SPECIES))}",
        f"  handed crops not found again                          {report.unlocated_inputs}",
        f"  verdict: {'PASS' if report.passed else 'FAIL'}",
        "",
        "report wizard (tried as a dog, then as a cat):",
    ]
    lines += [f"  {'refused ' if i.refused else 'accepted'}  {'person-only ' if i.person_only else ''}"
              f"{i.source}" + ("" if i.refused else f"  ({i.reason})") for i in report.images]
    lines.append("ingest (each image as a panning clip):")
    lines += [f"  {c.status:<7} {c.sightings} sighting(s)  {c.source}"
              + (f"  ({c.reason})" if c.reason else "") for c in report.clips]
    return lines
