"""Follow each animal across the sampled frames of one clip, and keep its best few crops.

A greedy IoU/centroid tracker is enough here: frames are a third of a second apart, neighbourhood
cameras rarely see more than a couple of animals at once, and a track only has to group the
detections of one animal into one sighting.  Because a fast dog can move further than its own
width between samples, a detection with no overlap still joins a track whose last box is close
(measured in box diagonals).  Labels are voted, not matched: a detector sometimes calls a dog a cat
for a frame.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]
DetectionTuple = tuple[str, float, Box]  # label, score, box

# Crops narrower than this (geometric mean of width and height) lose detail the embedder needs.
GOOD_CROP_SIDE = 96.0
# Laplacian variance at which a crop counts as half-sharp (after shrinking it to SHARPNESS_SIDE).
SHARPNESS_HALF = 60.0
SHARPNESS_SIDE = 96
# A box touching the frame's edge usually shows part of the animal.
EDGE_PENALTY = 0.6
# A box this much inside a larger one in the same frame is part of that animal.
NESTED_FRACTION = 0.7


@dataclass(frozen=True)
class Observation:
    """One detection that joined a track."""

    seconds: float
    label: str
    score: float
    box: Box


@dataclass(eq=False)
class CropCandidate:
    """A crop worth keeping: its quality, where it came from, and its pixels (with margin).

    ``rgb`` is cut from the frame after every person region in it was blurred: the embedder sees
    exactly what is stored and shown, so no person's pixels ever reach a vector.
    """

    quality: float
    seconds: float
    box: Box
    score: float
    rgb: np.ndarray


@dataclass(eq=False)
class Track:
    """One animal: its observations in time order and its best crops, best first."""

    id: int
    observations: list[Observation] = field(default_factory=list)
    crops: list[CropCandidate] = field(default_factory=list)

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    @property
    def label(self) -> str:
        """The label with the most detector confidence summed over the track."""
        votes: dict[str, float] = defaultdict(float)
        for obs in self.observations:
            votes[obs.label] += obs.score
        return max(votes, key=votes.__getitem__)

    @property
    def best_score(self) -> float:
        return max(obs.score for obs in self.observations)

    @property
    def travel(self) -> float:
        """How far the animal got from where it was first seen, in diagonals of its first box."""
        first = self.observations[0].box
        return max(centre_distance(first, obs.box) for obs in self.observations)

    def wants(self, quality: float, keep: int) -> bool:
        """Would a crop of this quality make the best ``keep``?  (Asked before cutting it.)"""
        return len(self.crops) < keep or quality > self.crops[-1].quality

    def offer(self, candidate: CropCandidate, keep: int) -> None:
        if self.wants(candidate.quality, keep):
            self.crops.append(candidate)
            self.crops.sort(key=lambda c: c.quality, reverse=True)
            del self.crops[keep:]


def box_iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres, in diagonals of box ``a``."""
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    diagonal = float(np.hypot(a[2] - a[0], a[3] - a[1])) or 1.0
    return float(np.hypot(dx, dy)) / diagonal


def inside_fraction(inner: Box, outer: Box) -> float:
    """How much of ``inner``'s area lies within ``outer``."""
    ix = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return ix * iy / area if area > 0 else 1.0


def drop_nested(detections: list[DetectionTuple],
                nested: float = NESTED_FRACTION) -> list[DetectionTuple]:
    """Detections minus those lying mostly inside a larger one: a detector often adds a box for
    a dog's head or hindquarters, which NMS keeps (low IoU) and which would start a second track."""
    def area(d: DetectionTuple) -> float:
        b = d[2]
        return (b[2] - b[0]) * (b[3] - b[1])

    kept: list[DetectionTuple] = []
    for det in sorted(detections, key=area, reverse=True):
        if all(inside_fraction(det[2], k[2]) < nested for k in kept):
            kept.append(det)
    return kept


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the crop's grey, shrunk by striding to about SHARPNESS_SIDE
    pixels so that big and small crops are judged alike."""
    step = max(1, min(rgb.shape[:2]) // SHARPNESS_SIDE)
    grey = rgb[::step, ::step].astype(np.float32).mean(axis=2)
    if min(grey.shape) < 3:
        return 0.0
    lap = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1]
           - 4 * grey[1:-1, 1:-1])
    return float(lap.var())


def box_quality(box: Box, score: float, frame_width: int, frame_height: int) -> float:
    """Quality known before cutting the crop: detector score × size × wholeness."""
    w, h = box[2] - box[0], box[3] - box[1]
    size = min(1.0, float(np.sqrt(max(w, 0) * max(h, 0))) / GOOD_CROP_SIDE)
    at_edge = box[0] <= 2 or box[1] <= 2 or box[2] >= frame_width - 2 or box[3] >= frame_height - 2
    return score * size * (EDGE_PENALTY if at_edge else 1.0)


def crop_quality(base_quality: float, crop: np.ndarray) -> float:
    """Box quality × sharpness (a motion-blurred dog embeds poorly)."""
    s = sharpness(crop)
    return base_quality * s / (s + SHARPNESS_HALF)


class Tracker:
    """Greedy IoU/centroid association of detections with live tracks.

    A track ends when it has not been matched for ``max_age_seconds``; ``update`` returns the
    track each detection joined, ``expire`` and ``finish`` hand over ended tracks.
    """

    def __init__(self, max_age_seconds: float, min_iou: float = 0.1, max_distance: float = 1.5,
                 max_speed: float = 4.5, max_reach: float = 3.0) -> None:
        self.max_age = max_age_seconds
        self.min_iou = min_iou
        # How far (in box diagonals) a detection may be from a track's last box: ``max_distance``
        # between close samples, ``max_speed`` per second when the detector ran less often (a
        # trotting dog covers ~4 body lengths a second), never more than ``max_reach``.
        self.max_distance = max_distance
        self.max_speed = max_speed
        self.max_reach = max_reach
        self._live: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, seconds: float,
               detections: list[DetectionTuple]) -> list[tuple[DetectionTuple, Track]]:
        """Join this frame's detections to tracks (or start new ones); returns each detection
        kept (nested part-boxes are dropped) with its track."""
        detections = drop_nested(detections)
        pairs = []
        for ti, track in enumerate(self._live):
            elapsed = seconds - track.last.seconds
            reach = min(self.max_reach, max(self.max_distance, self.max_speed * elapsed))
            for di, (_, _, box) in enumerate(detections):
                overlap = box_iou(track.last.box, box)
                distance = centre_distance(track.last.box, box)
                if overlap >= self.min_iou or distance <= reach:
                    # Overlap first, then nearness; both in one key so the greedy pass is stable.
                    pairs.append((-overlap, distance, ti, di))
        assigned: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for _, _, ti, di in sorted(pairs):
            if ti in used_tracks or di in assigned:
                continue
            used_tracks.add(ti)
            assigned[di] = self._live[ti]
        for di in range(len(detections)):
            if di not in assigned:
                track = Track(next(self._ids))
                self._live.append(track)
                assigned[di] = track
        for di, (label, score, box) in enumerate(detections):
            assigned[di].observations.append(Observation(seconds, label, score, box))
        return [(detections[di], assigned[di]) for di in range(len(detections))]

    def expire(self, seconds: float) -> list[Track]:
        """Tracks not seen for longer than ``max_age_seconds`` before ``seconds``."""
        ended = [t for t in self._live if seconds - t.last.seconds > self.max_age]
        self._live = [t for t in self._live if t not in ended]
        return ended

    def finish(self) -> list[Track]:
        """Every track still live, at the end of the clip."""
        ended, self._live = self._live, []
        return ended
