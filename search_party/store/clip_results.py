"""What processing a clip hands to the store: one sighting draft per tracked animal, and how
long each stage took.

A *draft* is a sighting before storage gives it a camera, a clip and an id.  Its vector is the
aggregate of its crops' vectors (``embeddings.vectors.aggregate``): a few views of one animal
average out pose and blur, and the per-crop vectors travel with it for matchers that prefer the
best single view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

Box = tuple[float, float, float, float]


@dataclass
class SightingDraft:
    """One animal seen in one clip.  ``box`` is in the upright frame's pixels; the thumbnail has
    every person region blurred and carries no EXIF or other metadata."""

    label: str  # 'dog' | 'cat': the likelier species, for display
    p_dog: float  # the species head's P(dog) for the animal (a search scores both species above a floor)
    first_time: datetime  # UTC-aware wall-clock
    last_time: datetime
    box: Box  # the best crop's box
    score: float  # best detector score on the track
    thumbnail_jpeg: bytes
    vector: np.ndarray  # (dim,) float32, L2-normalised aggregate of the crops
    crop_vectors: np.ndarray  # (k, dim) float32, L2-normalised
    model_version: str


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
    gops: int = 0  # spans between scanned key frames, when the key-frame gate was used (else 0)
    gops_decoded: int = 0  # of those, decoded in full (something changed)


@dataclass
class ClipResult:
    sightings: list[SightingDraft]
    stats: IngestStats
    start_time: datetime | None = None  # the wall-clock time of the clip's first frame, UTC
    start_source: str = ""  # one of search_party.community.filming_time.SOURCES
