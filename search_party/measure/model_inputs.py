"""What the vision models were actually handed: the crops given to the re-ID embedder and to the
species head, recorded at the call, so the privacy audit measures those pixels rather than a
model of them.

``Recording(models)`` holds the same models (the same detector, the same real
embedders underneath) with the re-ID embedder and the species head's feature embedder wrapped so
each keeps a copy of every crop before embedding it.  Give ``recording.models`` to the real
ingest task and report wizard; ``take()`` returns what they were handed since the last take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from embeddings.embedder import Embedder, crop_box
from embeddings.redact import blur_regions
from search_party.ingest.tracking import box_iou
from search_party.vision import Models

Box = tuple[float, float, float, float]
Rect = tuple[int, int, int, int]  # left, top, right, bottom in pixels

SAME_OBJECT_IOU = 0.5  # the usual detection criterion for "the same object"
# A crop shows a person when more than this share of it is person pixels the model received
# sharp.  Set between what the audit measures with the redaction on (largest 3.2 % of a crop,
# all data and composites: the astronaut's suit beside the dog, where ingest's detector drew the
# person box shorter than another detector) and with it off (18 % on the lady composite, all of
# its person pixels): a tenth of the crop.
PERSON_SHARE_LIMIT = 0.1
REID = "re-ID embedder"  # its vectors are stored (a sighting's, a report photo's)
SPECIES = "species head"  # reads ImageNet features of each pet crop; only P(dog) is stored


@dataclass(frozen=True)
class Handed:
    """One crop as a model received it (a copy: the caller's array may be reused)."""

    model: str  # REID or SPECIES
    crop: np.ndarray  # H×W×3 uint8 RGB


class _RecordingEmbedder:
    """A real embedder that first keeps a copy of each crop it is handed."""

    def __init__(self, real: Embedder, model: str, log: list[Handed]) -> None:
        self.real, self.model, self.log = real, model, log
        self.name, self.version, self.dim = real.name, real.version, real.dim

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        self.log.extend(Handed(self.model, np.array(crop, dtype=np.uint8, copy=True)) for crop in crops)
        return self.real.predict(crops)


class Recording:
    """``models`` with both embedders recorded; ``take()`` drains what they were handed."""

    def __init__(self, models: Models) -> None:
        self._handed: list[Handed] = []
        # A recorder stands in for the embedder it wraps (same name, version, dim and predict).
        reid = cast(Embedder, _RecordingEmbedder(models.embedder, REID, self._handed))
        features = cast(Embedder, _RecordingEmbedder(models.species.features, SPECIES, self._handed))
        self.models = Models(models.detector, reid, dataclasses.replace(models.species, features=features))

    def take(self) -> list[Handed]:
        handed, self._handed[:] = list(self._handed), []
        return handed


# ---------------------------------------------------------------- what of a person a crop holds

# A person pixel carries detail when redaction would change it by more than this (of 255, the
# largest channel): a flat patch (a plain wall, a dark coat) says nothing of who is there.
DETAIL_LEVEL = 12
KEPT_DETAIL = 4  # sharp: within a quarter of the redaction's change from the original (``measure``)
# The crop's origin is the pet box, on a frame or photo the crop came from, whose crop equals it
# (within this, per channel) on at least LOCATE_SHARE of its pixels, each pixel as it is there or
# as the audited models' own redaction leaves it (a pet beside a person may be blurred too).
SAME_LEVEL = 2
LOCATE_SHARE = 0.9


def box_mask(shape: tuple[int, int], boxes: Iterable[Box]) -> np.ndarray:
    """The union of boxes as a boolean H×W mask (a pixel counts when its centre is inside)."""
    height, width = shape
    mask = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in boxes:
        left, top = max(0, int(np.ceil(x1 - 0.5))), max(0, int(np.ceil(y1 - 0.5)))
        right, bottom = min(width, int(np.ceil(x2 - 0.5))), min(height, int(np.ceil(y2 - 0.5)))
        mask[top:bottom, left:right] = True
    return mask


def crop_rect(shape: tuple[int, int], box: Box, margin: float) -> Rect:
    """The rectangle ``embeddings.embedder.crop_box`` cuts, read off coordinate grids cut by it,
    so the audit finds the very crop that ingest and the report wizard make."""
    height, width = shape
    xs = crop_box(np.broadcast_to(np.arange(width)[None, :, None], (height, width, 1)), box, margin)
    ys = crop_box(np.broadcast_to(np.arange(height)[:, None, None], (height, width, 1)), box, margin)
    return int(xs[0, 0, 0]), int(ys[0, 0, 0]), int(xs[0, -1, 0]) + 1, int(ys[-1, 0, 0]) + 1


def cut(array: np.ndarray, rect: Rect) -> np.ndarray:
    left, top, right, bottom = rect
    return array[top:bottom, left:right]


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the largest channel difference."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)


def same_share(crop: np.ndarray, *versions: np.ndarray) -> float:
    """The share of ``crop``'s pixels equal (within SAME_LEVEL) to one of ``versions`` (each the
    same shape) at that pixel."""
    same = np.zeros(crop.shape[:2], bool)
    for version in versions:
        same |= _distance(crop, version) <= SAME_LEVEL
    return float(same.mean())


@dataclass
class InputCheck:
    """One crop a model was handed, against the person boxes of the frame or photo it was cut
    from; the measures stay None/0 when its origin was not found (which fails the audit)."""

    model: str  # REID or SPECIES
    kind: str  # 'sighting' (camera footage) | 'report photo'
    source: str
    composite: bool
    pixels: int  # the crop's
    person_iou: float | None = None  # the pet box against the best-overlapping person box
    person_pixels: int = 0  # person pixels of the crop that carry detail (see ``measure``)
    sharp_person_pixels: int = 0  # ... of which the model received sharp

    @property
    def located(self) -> bool:
        return self.person_iou is not None

    @property
    def pet_is_a_person(self) -> bool:
        return self.person_iou is not None and self.person_iou >= SAME_OBJECT_IOU

    @property
    def sharp_share(self) -> float:
        return self.sharp_person_pixels / self.pixels if self.pixels else 0.0

    @property
    def shows_a_person(self) -> bool:
        """More than PERSON_SHARE_LIMIT of the crop is person the model received sharp."""
        return self.sharp_share > PERSON_SHARE_LIMIT


def measure(check: InputCheck, crop: np.ndarray, original: np.ndarray, rect: Rect, pet_box: Box,
            persons: Sequence[Box]) -> None:
    """Fill in ``check`` for ``crop``, cut at ``rect`` from ``original`` (the frame or photo as it
    was before any redaction) around ``pet_box``; ``persons`` are the person boxes found on it.

    Person pixels are those of the person boxes beside the pet; when the pet box is itself a
    person box (IoU >= SAME_OBJECT_IOU: a detector called a person a pet, or a pet a person),
    those inside it too.  Only person pixels with detail count: where the original and the
    pixel as redaction would leave it (``blur_regions`` with ``persons``) differ by more than
    DETAIL_LEVEL.  Such a pixel is *sharp* when the model's crop kept most of that detail: it
    lies within a quarter of the redaction's change from the original (an untouched pixel, or
    one blurred too weakly to matter).  "Nearer the original than the redacted version" would
    be too loose: a crop ingest blurred with its own boxes (another pixelation grid) reads 2 %
    sharp by chance on a visibly fully blurred composite, 0.1 % with the quarter.  A sharpness
    statistic on the crop alone (variance of the Laplacian) would need a threshold per scene,
    calls a plain coat blurred and the edge of a pixelated block sharp; the original frame is at
    hand, so nothing needs guessing."""
    shape = original.shape[:2]
    raw = cut(original, rect)
    redacted = cut(blur_regions(original, persons), rect) if persons else raw
    check.person_iou = max((box_iou(pet_box, p) for p in persons), default=0.0)
    person = box_mask(shape, persons)
    if not check.pet_is_a_person:
        person &= ~box_mask(shape, [pet_box])
    detail = cut(person, rect) & (_distance(raw, redacted) > DETAIL_LEVEL)
    sharp = detail & (KEPT_DETAIL * _distance(crop, raw) < _distance(raw, redacted))
    check.person_pixels, check.sharp_person_pixels = int(detail.sum()), int(sharp.sum())


def locate(pending: Sequence[tuple[InputCheck, np.ndarray]], images: Iterable[np.ndarray],
           boxes: Callable[[np.ndarray], tuple[list[Box], list[Box]]], margin: float,
           persons: Callable[[np.ndarray], list[Box]]) -> None:
    """Find where each (check, crop) was cut and ``measure`` it there.  Candidates are the pet
    boxes the audited models' detector gives on each of ``images`` (the source's photo, or its
    clip's frames), cut with ``margin``; ``boxes`` gives its pets and persons on an image.  The
    origin is the candidate whose crop equals the handed one, each pixel untouched or as the
    models' own redaction leaves it, on the largest share of pixels (at least LOCATE_SHARE).
    ``persons`` are the boxes measured against (every detector's)."""
    best = [LOCATE_SHARE] * len(pending)
    for image in images:
        pets, redacted = boxes(image)
        blurred = blur_regions(image, redacted) if redacted else image
        candidates = [(box, crop_rect(image.shape[:2], box, margin)) for box in pets]
        found: list[Box] | None = None  # the person boxes, found once per image when needed
        for number, (check, crop) in enumerate(pending):
            for box, rect in candidates:
                original = cut(image, rect)
                if original.shape != crop.shape:
                    continue
                share = same_share(crop, original, cut(blurred, rect))
                if share >= best[number]:
                    best[number] = share
                    found = persons(image) if found is None else found
                    measure(check, crop, image, rect, box, found)
