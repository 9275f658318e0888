"""A lost or found report's photos turned into query vectors: only ever the animal in them.

Invariant 1 of DESIGN.md: every photo must show the reported species, a photo without one is
refused with a message that says which photo and what to do, and a person in a photo is never
cropped or embedded — the crop comes from a pet box of the pet-only detector, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embeddings.embedder import CROP_MARGIN, crop_box
from embeddings.images import ImageSource, load_rgb
from embeddings.redact import blur_beside
from embeddings.vectors import unit_rows
from search_party.errors import ImageError, UserError
from search_party.search.scoring import query_vector

if TYPE_CHECKING:
    from embeddings.detector import PetDetector
    from embeddings.embedder import Embedder

Box = tuple[float, float, float, float]
SPECIES = ("dog", "cat")
MAX_PHOTOS = 5


@dataclass(frozen=True)
class QueryPhotos:
    """The vectors a report is searched with, one row per photo, and where the animal was."""

    species: str
    vectors: np.ndarray  # (n, dim) float32, unit rows
    model_version: str
    boxes: tuple[Box, ...] = ()  # the animal's box in each (upright) photo, when made from photos
    # Person regions of each photo, for blurring the copy that is kept (never cropped or embedded).
    person_boxes: tuple[tuple[Box, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.species not in SPECIES:
            raise UserError(f"species {self.species!r} is not one of {', '.join(SPECIES)}")
        if self.vectors.ndim != 2 or not 1 <= len(self.vectors) <= MAX_PHOTOS:
            raise ValueError(f"a query holds 1 to {MAX_PHOTOS} photo vectors, got shape {self.vectors.shape}")

    @property
    def vector(self) -> np.ndarray:
        """The single vector searched with (``scoring.query_vector``)."""
        return query_vector(self.vectors)


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def query_from_photos(images: Sequence[ImageSource | np.ndarray], detector: PetDetector,
                      embedder: Embedder, species: str = "dog") -> QueryPhotos:
    """Detect the reported animal in each photo, crop it, embed the crops.

    ``images`` are files, bytes or H×W×3 uint8 RGB arrays (already upright).  In a photo with
    several animals of the species the largest box is taken: an owner's photo is framed on their
    own pet.  Raises UserError for no photo, too many, or a photo without the species, and
    ImageError (prefixed with the photo's number) for a file that is not a readable image.
    """
    if species not in SPECIES:
        raise UserError(f"species {species!r} is not one of {', '.join(SPECIES)}")
    if not images:
        raise UserError(f"add a photo of the {species}: 1 to {MAX_PHOTOS} photos are needed")
    if len(images) > MAX_PHOTOS:
        raise UserError(f"{len(images)} photos given; choose at most {MAX_PHOTOS} where the "
                        f"{species} is clearly visible")
    crops, boxes, people = [], [], []
    for number, image in enumerate(images, start=1):
        if isinstance(image, np.ndarray):
            rgb = image
        else:
            try:
                rgb = load_rgb(image)
            except ImageError as exc:
                raise ImageError(f"photo {number}: {exc}") from None
        found = [d for d in detector.predict(rgb) if d.label == species]
        if not found:
            others = sorted({d.label for d in detector.predict(rgb)})
            seen = f" (it seems to show a {' and a '.join(others)})" if others else ""
            raise UserError(f"no {species} found in photo {number}{seen} — try one where the "
                            f"{species} is clearly visible")
        box = max(found, key=lambda d: (_area(d.box), d.score)).box
        persons = detector.person_boxes(rgb)  # the same forward pass as detect()
        people.append(tuple(persons))
        if persons:
            rgb = blur_beside(rgb, persons, keep=box)
        crops.append(crop_box(rgb, box, CROP_MARGIN))
        boxes.append(box)
    vectors = unit_rows(embedder.predict(crops))
    return QueryPhotos(species=species, vectors=vectors, model_version=embedder.version,
                       boxes=tuple(boxes), person_boxes=tuple(people))
