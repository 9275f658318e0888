"""A lost or found report's photos turned into query vectors: only ever the animal in them.

Invariant 1 of DESIGN.md: every photo must show the reported species, a photo without one is
refused with a message that says which photo and what to do, and a person in a photo is never
cropped or embedded — the crop comes from a pet box of the pet-only detector, nothing else, and
people beside the pet are blurred before any model sees the crop.

Which species a pet box holds is the species head's call (embeddings/species.py), not COCO's
label: a box counts for the reported species when its probability is not negligible
(``SPECIES_FLOOR``), so a dog COCO calls "cat" is still found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from embeddings.embedder import CROP_MARGIN, crop_box
from embeddings.images import ImageSource, load_rgb
from embeddings.redact import blur_beside
from embeddings.species import SPECIES_FLOOR, likely_species, species_probability
from embeddings.vectors import unit_rows
from search_party.errors import ImageError, UserError
from search_party.search.scoring import query_vector

if TYPE_CHECKING:
    from search_party.vision import Models

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


@dataclass(frozen=True)
class Animal:
    """What a photo shows of the reported species: the largest pet box whose probability of
    that species is not negligible (None if there is none), the crop as models may see it
    (people beside it blurred), and the likelier species of every pet box (for the message)."""

    box: Box | None
    crop: np.ndarray | None
    probability: float
    seen: tuple[str, ...]
    person_boxes: tuple[Box, ...]


def find_animal(rgb: np.ndarray, species: str, models: Models) -> Animal:
    """The animal of ``species`` in an upright RGB photo (see ``Animal``)."""
    pets = models.detector.predict(rgb)
    persons = tuple(models.detector.person_boxes(rgb))  # the same forward pass
    if not pets:
        return Animal(None, None, 0.0, (), persons)
    crops = [crop_box(blur_beside(rgb, persons, keep=p.box) if persons else rgb, p.box, CROP_MARGIN)
             for p in pets]
    p_dog = models.species.predict(crops)
    seen = tuple(sorted({likely_species(float(p)) for p in p_dog}))
    fitting = [(pet, crop, float(species_probability(float(p), species)))
               for pet, crop, p in zip(pets, crops, p_dog)
               if species_probability(float(p), species) >= SPECIES_FLOOR]
    if not fitting:
        return Animal(None, None, 0.0, seen, persons)
    pet, crop, probability = max(fitting, key=lambda f: (_area(f[0].box), f[0].score))
    return Animal(pet.box, crop, probability, seen, persons)


def not_found_message(species: str, seen: tuple[str, ...], where: str) -> str:
    shown = f" (it seems to show a {' and a '.join(seen)})" if seen else ""
    return f"no {species} found in {where}{shown} — try one where the {species} is clearly visible"


def query_from_photos(images: Sequence[ImageSource | np.ndarray], models: Models,
                      species: str = "dog") -> QueryPhotos:
    """Find the reported animal in each photo (``find_animal``), embed the crops.

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
        animal = find_animal(rgb, species, models)
        if animal.box is None or animal.crop is None:
            raise UserError(not_found_message(species, animal.seen, f"photo {number}"))
        people.append(animal.person_boxes)
        crops.append(animal.crop)
        boxes.append(animal.box)
    vectors = unit_rows(models.embedder.predict(crops))
    return QueryPhotos(species=species, vectors=vectors, model_version=models.embedder.version,
                       boxes=tuple(boxes), person_boxes=tuple(people))
