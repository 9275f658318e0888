"""What ingesting a clip produces: one sighting draft per tracked animal, and how it was measured.

A *draft* is a sighting before storage gives it a camera, a clip and an id.  Its vector is the
normalised mean of its crops' vectors: a few views of one animal average out pose and blur, and
the per-crop vectors travel with it for matchers that prefer the best single view.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from PIL import Image

from embeddings.redact import blur_regions
from search_party.errors import UserError
from search_party.ingest.video.decode import DEFAULT_MAX_CLIP_SECONDS, DEFAULT_MAX_PIXELS, ClipInfo

Box = tuple[float, float, float, float]
THUMBNAIL_SIDE = 320
THUMBNAIL_QUALITY = 85


@dataclass
class SightingDraft:
    """One animal seen in one clip.  ``box`` is in the upright frame's pixels; the thumbnail has
    every person region blurred and carries no EXIF or other metadata."""

    label: str  # 'dog' | 'cat'
    first_time: datetime  # UTC-aware wall-clock
    last_time: datetime
    box: Box  # the best crop's box
    score: float  # best detector score on the track
    thumbnail_jpeg: bytes
    vector: np.ndarray  # (dim,) float32, L2-normalised aggregate of the crops
    crop_vectors: np.ndarray  # (k, dim) float32, L2-normalised
    model_version: str


@dataclass
class IngestOptions:
    """Settings of one ingest.  Defaults: 3 frames a second checked for motion; the detector sees
    a frame as soon as something starts to move, then at most 1.5 a second while it goes on, and
    at least every 2 s regardless, so an animal in view for 2 s is seen at least three times."""

    sample_fps: float = 3.0
    detect_fps: float = 1.5
    max_gap_seconds: float = 2.0
    motion_threshold: float = 0.001  # fraction of the small grey frame that must change
    max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS
    max_pixels: int = DEFAULT_MAX_PIXELS
    crops_per_track: int = 4
    min_track_hits: int = 2  # one detection alone is too often a shadow or a bag
    # A track that never moved must score this (the mean of its best min_track_hits scores):
    # a stone, a bush or a garden ornament stays put and scores low (the pedestrian CCTV clip
    # has a stone called "dog" at 0.30-0.41 in every frame); a dog lying still scores high.
    min_still_score: float = 0.6
    still_travel: float = 0.25  # moving less than this many box diagonals counts as still
    track_max_age_seconds: float = 3.0  # a track ends after this long unseen
    motion_width: int = 160
    crop_margin: float = 0.1

    def __post_init__(self) -> None:
        positive = ("sample_fps", "detect_fps", "max_gap_seconds", "max_clip_seconds", "max_pixels",
                    "crops_per_track", "min_track_hits", "motion_width")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"ingest setting {name} must be positive, "
                                f"not {getattr(self, name)}")
        if not 0 <= self.min_still_score <= 1:
            raise UserError(f"min_still_score is a score in [0, 1], not {self.min_still_score}")
        if not 0 <= self.motion_threshold < 1:
            raise UserError(f"motion_threshold is a fraction in [0, 1), "
                            f"not {self.motion_threshold}")
        if self.track_max_age_seconds <= self.max_gap_seconds:
            # A still animal is only looked at every max_gap seconds; its track must outlive that.
            raise UserError(
                f"track_max_age_seconds ({self.track_max_age_seconds}) must exceed "
                f"max_gap_seconds ({self.max_gap_seconds})"
            )


@dataclass
class IngestStats:
    """Where the time went.  ``frames_decoded`` counts frames the decoder produced (it may skip
    frames nothing refers to); ``ms_per_stage`` sums wall time per stage, and since decoding and
    the motion test run in their own thread beside the detector, the stages may add up to more
    than ``wall_seconds``."""

    clip_seconds: float
    wall_seconds: float
    frames_decoded: int
    frames_motion_checked: int
    frames_detected: int
    crops_embedded: int
    ms_per_stage: dict[str, float]
    width: int
    height: int
    codec: str
    frames_in_clip: int = 0
    frames_corrupt: int = 0
    tracks: int = 0


@dataclass
class ClipResult:
    sightings: list[SightingDraft]
    stats: IngestStats
    start_time: datetime | None = None  # the wall-clock time of the clip's first frame, UTC
    start_source: str = ""  # 'given', 'container' (its creation time) or 'file' (modified time)
    info: ClipInfo | None = field(default=None, repr=False)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def aggregate(crop_vectors: np.ndarray) -> np.ndarray:
    """One L2-normalised vector for (k, dim) crop vectors: the normalised mean of unit rows."""
    if len(crop_vectors) == 0:
        raise ValueError("a sighting needs at least one crop vector")
    return unit_rows(unit_rows(crop_vectors).mean(axis=0))


def blurred_frame(rgb: np.ndarray, person_boxes: list[Box]) -> np.ndarray:
    """``rgb`` with every person region (x1, y1, x2, y2 in its pixels) blurred."""
    return blur_regions(rgb, person_boxes) if person_boxes else rgb


def thumbnail_jpeg(rgb: np.ndarray, person_boxes: list[Box]) -> bytes:
    """``rgb`` with every person region blurred, at most THUMBNAIL_SIDE pixels, as a JPEG with no
    EXIF: only pixels leave, never a camera's metadata.  (The pipeline blurs whole frames before
    cutting crops, so a person cut off at the crop's edge is blurred too, and passes [] here.)"""
    img = Image.fromarray(blurred_frame(rgb, person_boxes))
    img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()
