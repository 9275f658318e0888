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

Then everything stored is checked against the pixels it came from.  Person boxes come from
*every* detector the project ships, not only the one ingest used, so a person that ingest's
detector missed still counts.

- **person vectors**: a stored vector (a sighting's, a report photo's) is a person vector when
  its pet box is a person box (IoU >= ``SAME_OBJECT_IOU``: the detector called a person a dog),
  or when more than ``PERSON_SHARE_LIMIT`` of its embedded crop is person-box pixels outside the
  pet box that the embedder saw unblurred (a person beside the animal: camera crops and report
  photos are both embedded after redaction of everything outside the pet's own box).  A sighting's frame is found again
  by decoding its clip over the sighting's time span: the frame whose crop looks most like the
  stored thumbnail, confirmed by the detector giving the stored box on it;
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
from collections.abc import Iterable, Sequence
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
from search_party.store import storage
from search_party.store.db import open_db, utcnow

Box = tuple[float, float, float, float]
Rect = tuple[int, int, int, int]  # left, top, right, bottom in pixels

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff")
SAME_OBJECT_IOU = 0.5  # the usual detection criterion for "the same object"
PERSON_SHARE_LIMIT = 0.2  # "more than a little": a fifth of the embedded crop
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
    """One stored vector and its stored image against the person boxes on its own frame or
    photo; the measures are None when the frame could not be found again."""

    kind: str  # 'sighting' | 'report photo'
    source: str
    composite: bool
    label: str
    person_iou: float | None = None  # the pet box against the best-overlapping person box
    person_share: float | None = None  # sharp person-box pixels beside the pet / embedded crop
    visible_persons: int = 0  # persons found on the stored image outside the blurred regions
    redaction: PixelTally = field(default_factory=PixelTally)  # in the stored image

    @property
    def verified(self) -> bool:
        return self.person_iou is not None

    @property
    def pet_is_a_person(self) -> bool:
        return self.person_iou is not None and self.person_iou >= SAME_OBJECT_IOU

    @property
    def person_vector(self) -> bool:
        return self.pet_is_a_person or (self.person_share is not None and self.person_share > PERSON_SHARE_LIMIT)


@dataclass
class AuditReport:
    detector: str
    embedder: str
    images: list[ImageOutcome] = field(default_factory=list)
    clips: list[ClipOutcome] = field(default_factory=list)
    vectors: list[VectorCheck] = field(default_factory=list)
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

    def person_vectors(self, composite: bool | None = False) -> int:
        """Person vectors stored from the data (default), the composites, or both (None)."""
        return sum(v.person_vector for v in self._vectors(composite))

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
        """Invariant 1 on the data: every person-only photo refused, no person vector stored,
        no pet box that is a person (composites included), every vector checked, no person left
        visible on a stored image, no metadata kept."""
        return (self.person_images_refused == self.person_images and self.person_vectors() == 0
                and self.pets_that_are_persons() == 0 and self.unverified_vectors == 0
                and self.visible_persons == 0 and self.stored_images_with_metadata == 0)

    def as_dict(self) -> dict:
        stored = self.stored_redaction
        return {
            "detector": self.detector, "embedder": self.embedder, "passed": self.passed,
            "person_images": self.person_images, "person_images_refused": self.person_images_refused,
            "person_vectors_stored": self.person_vectors(),
            "composite_person_vectors": self.person_vectors(composite=True),
            "pets_that_are_persons": self.pets_that_are_persons(),
            "vectors_checked": len(self.vectors), "unverified_vectors": self.unverified_vectors,
            "same_object_iou": SAME_OBJECT_IOU, "person_share_limit": PERSON_SHARE_LIMIT,
            "visible_persons_on_stored_images": self.visible_persons,
            "sightings_from_person_only_sources": self.sightings_from_person_only_sources,
            "stored_redaction": {**asdict(stored), "share": stored.share},
            "person_data_redaction": {**asdict(self.person_data_redaction),
                                      "share": self.person_data_redaction.share},
            "stored_images": self.stored_images,
            "stored_images_with_metadata": self.stored_images_with_metadata,
            "images": [asdict(i) for i in self.images], "clips": [asdict(c) for c in self.clips],
            "vectors": [{**asdict(v), "person_vector": v.person_vector} for v in self.vectors],
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


def _box_mask(shape: tuple[int, int], boxes: Iterable[Box]) -> np.ndarray:
    """The union of boxes as a boolean H×W mask (a pixel counts when its centre is inside)."""
    height, width = shape
    mask = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in boxes:
        left, top = max(0, int(np.ceil(x1 - 0.5))), max(0, int(np.ceil(y1 - 0.5)))
        right, bottom = min(width, int(np.ceil(x2 - 0.5))), min(height, int(np.ceil(y2 - 0.5)))
        mask[top:bottom, left:right] = True
    return mask


def blurred_mask(shape: tuple[int, int], person_boxes: Sequence[Box]) -> np.ndarray:
    """Which pixels the real redaction blurs for these boxes: ``blur_regions`` run over a
    one-pixel checkerboard turns every blurred pixel grey and leaves the rest black or white."""
    height, width = shape
    checker = ((np.indices((height, width)).sum(0) % 2) * 255).astype(np.uint8)
    board = np.repeat(checker[:, :, None], 3, axis=2)
    changed = np.abs(blur_regions(board, person_boxes).astype(np.int16) - board).max(axis=2)
    return changed > 32


def crop_rect(shape: tuple[int, int], box: Box, margin: float) -> Rect:
    """The rectangle ``embeddings.embedder.crop_box`` cuts, read off coordinate grids cut by it,
    so the audit measures the very crop that ingest and the report wizard make."""
    height, width = shape
    xs = crop_box(np.broadcast_to(np.arange(width)[None, :, None], (height, width, 1)), box, margin)
    ys = crop_box(np.broadcast_to(np.arange(height)[:, None, None], (height, width, 1)), box, margin)
    return int(xs[0, 0, 0]), int(ys[0, 0, 0]), int(xs[0, -1, 0]) + 1, int(ys[-1, 0, 0]) + 1


def _cut(mask: np.ndarray, rect: Rect) -> np.ndarray:
    left, top, right, bottom = rect
    return mask[top:bottom, left:right]


def has_metadata(jpeg: bytes) -> bool:
    """Whether an image carries EXIF (GPS, camera make and model, times), XMP, an ICC profile or
    a comment."""
    with Image.open(io.BytesIO(jpeg)) as img:
        kept = set(img.info) & {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"}
        return bool(kept or img.getexif()) or b"Exif\x00\x00" in jpeg or b"http://ns.adobe.com/xap" in jpeg


class _Eyes:
    """Ingest's detector, for the boxes ingest itself used, and every detector the project ships,
    for the person boxes the audit measures against."""

    def __init__(self, ingest_detector: PetDetector, runtime: Runtime) -> None:
        self.ingest = ingest_detector
        self.reference = [ingest_detector] + [PetDetector.load(name, runtime) for name in DETECTORS
                                              if name != ingest_detector.name]

    def persons(self, rgb: np.ndarray) -> list[Box]:
        return [box for detector in self.reference for box in detector.person_boxes(rgb)]

    def tally(self, rgb: np.ndarray) -> PixelTally:
        """Person-box pixels of a whole frame, and how many ingest's redaction blurs."""
        people = _box_mask(rgb.shape[:2], self.persons(rgb))
        blurred = blurred_mask(rgb.shape[:2], self.ingest.person_boxes(rgb))
        return PixelTally(int(people.sum()), int((people & blurred).sum()))

    def check(self, check: VectorCheck, rgb: np.ndarray, pet_box: Box, embedded: Rect, shown: Rect,
              stored_jpeg: bytes) -> None:
        """Fill in ``check`` for a vector embedded from the ``embedded`` crop of ``rgb`` (after
        ingest's redaction) and an image stored from its ``shown`` crop."""
        shape = rgb.shape[:2]
        persons = self.persons(rgb)
        people = _box_mask(shape, persons)
        blurred = blurred_mask(shape, self.ingest.person_boxes(rgb))
        # Person pixels beside the pet that the embedder saw sharp.
        seen = people & ~_box_mask(shape, [pet_box]) & ~blurred
        check.person_iou = max((box_iou(pet_box, p) for p in persons), default=0.0)
        check.person_share = float(_cut(seen, embedded).mean())
        check.redaction = PixelTally(int(_cut(people, shown).sum()), int(_cut(people & blurred, shown).sum()))
        left, top = shown[:2]
        pet_in_shown = (pet_box[0] - left, pet_box[1] - top, pet_box[2] - left, pet_box[3] - top)
        check.visible_persons = self._visible_persons(stored_jpeg, _cut(blurred, shown), pet_in_shown)

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
                region = _cut(blurred, (int(found[0]), int(found[1]), int(np.ceil(found[2])),
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
    """A throw-away Search Party instance: data folder, database, one opted-in camera."""

    def __init__(self, settings: Settings, work: Path) -> None:
        self.settings = settings.moved_to(work / "data")
        self.settings.prepare_dirs()
        self.db = open_db(self.settings.db_path)
        owner = accounts.create_user(self.db, "camera-owner@audit.invalid")
        camera = cameras.register_camera(self.db, owner.id, lat=AUDIT_PLACE[0], lon=AUDIT_PLACE[1],
                                         name="audit")
        self.camera_id = cameras.opt_in(self.db, camera.id, owner.id).id
        self.models = vision.load_models(self.settings)
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
            clip_task.run_clip(self.settings, submission.clip.id, f"audit:{submission.clip.id}")
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
                rect = crop_rect(rgb.shape[:2], sighting.box, margin)  # embedded and shown alike
                eyes.check(check, rgb, sighting.box, rect, rect, thumbnail)
            report.vectors.append(check)


def _check_report_photos(scratch: _Scratch, eyes: _Eyes, photos: dict[int, tuple[Path, Source]],
                         report: AuditReport) -> None:
    rows = scratch.db.execute("SELECT lost_report_id, image, label, box_x1, box_y1, box_x2, box_y2 "
                              "FROM report_photos ORDER BY id").fetchall()
    for report_id, image, label, *box in rows:
        path, source = photos[report_id]
        rgb = load_rgb(path)
        check = VectorCheck("report photo", source.name, source.dog is not None, label)
        eyes.check(check, rgb, box, crop_rect(rgb.shape[:2], box, CROP_MARGIN),
                   crop_rect(rgb.shape[:2], box, reports.PHOTO_MARGIN), image)
        report.vectors.append(check)


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
              work_dir: Path | None = None) -> AuditReport:
    """Run ``sources`` through a scratch instance built from ``settings`` (detector, embedder,
    model cache) and count what the module docstring lists.  The scratch folder is deleted."""
    now = now or utcnow()
    work = Path(tempfile.mkdtemp(prefix="privacy-audit-", dir=work_dir))
    try:
        scratch = _Scratch(settings, work)
        eyes = _Eyes(scratch.models.detector, scratch.settings.vision_runtime())
        report = AuditReport(detector=settings.detector, embedder=scratch.models.embedder.version)
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
                clip_path = still_clip(path, made / f"{number:03d}-{path.stem}.mp4")
            else:
                clip_path = path
            if source.dog is not None:
                composites.add(clip_path)
            clip = scratch.ingest(clip_path, source.name, start + timedelta(minutes=number))
            report.clips.append(ClipOutcome(source.name, source.kind, source.person_only,
                                            source.dog is not None, clip.status,
                                            clip.sightings_count or 0, clip.reason))
        _check_sightings(scratch, eyes, composites, report)
        _check_report_photos(scratch, eyes, photos, report)
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


def _largest(vectors: list[VectorCheck], kind: str) -> str:
    shares = [v.person_share for v in vectors if v.kind == kind and v.person_share is not None]
    return f"{max(shares):.0%}" if shares else "none"


def summary_lines(report: AuditReport) -> list[str]:
    """The audit as a few lines a person reads, then one line per file."""
    data = report._vectors(False)
    composite = report._vectors(True)
    lines = [
        f"privacy audit (detector {report.detector}, embedder {report.embedder}; person boxes from "
        f"{', '.join(DETECTORS)})",
        f"  person-only images refused by the report wizard  {report.person_images_refused} of "
        f"{report.person_images}",
        f"  person vectors stored                             {report.person_vectors()} of "
        f"{len(data)} vectors stored from the data",
        f"  sightings stored from person-only sources         {report.sightings_from_person_only_sources}",
        f"  pet boxes that are a person (IoU >= {SAME_OBJECT_IOU})          "
        f"{report.pets_that_are_persons()} of {len(report.vectors)} (composites included)",
        f"  vectors whose frame was not found again           {report.unverified_vectors}",
        f"  person-box pixels blurred in stored images        {_share(report.stored_redaction)}",
        f"  persons visible (unblurred) on stored images      {report.visible_persons}",
        f"  person-box pixels blurred on the person data      {_share(report.person_data_redaction)}"
        " (whole frames, as if each were stored)",
        f"  stored images with EXIF/XMP/ICC/comments          {report.stored_images_with_metadata} of "
        f"{report.stored_images}",
        f"  dog among people (composites): embedded crops more than {PERSON_SHARE_LIMIT:.0%} sharp "
        f"person beside the dog: {report.person_vectors(composite=True)} of {len(composite)} "
        f"(largest: camera crops {_largest(composite, 'sighting')}, report photos "
        f"{_largest(composite, 'report photo')})",
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
