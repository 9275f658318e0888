"""How one ingest looks at a clip: how often frames are sampled, when the detector runs, what
makes a track an animal, and the limits a clip must keep."""

from __future__ import annotations

from dataclasses import dataclass, field

from embeddings.embedder import CROP_MARGIN
from search_party import vision
from search_party.errors import UserError
from search_party.ingest.video.decode import DEFAULT_MAX_CLIP_SECONDS, DEFAULT_MAX_PIXELS


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
    crop_margin: float = CROP_MARGIN
    # FFmpeg threads beside the detector's (search_party.vision.decode_threads).
    decode_threads: int = field(default_factory=vision.decode_threads)
    # Decode in full only the GOPs whose key frames changed, where the clip's layout allows
    # (search_party.ingest.video.keyframe_gate); off: every frame is decoded.
    keyframe_gate: bool = True
    # Where the frame moved and the whole-frame look found no animal, look again closer at the
    # largest moving regions, at most this many (search_party.ingest.second_look); 0: never.
    second_look_regions: int = 2

    def __post_init__(self) -> None:
        positive = ("sample_fps", "detect_fps", "max_gap_seconds", "max_clip_seconds", "max_pixels",
                    "crops_per_track", "min_track_hits", "motion_width", "decode_threads")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"ingest setting {name} must be positive, "
                                f"not {getattr(self, name)}")
        if self.second_look_regions < 0:
            raise UserError(f"second_look_regions must be 0 (off) or more, "
                            f"not {self.second_look_regions}")
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
