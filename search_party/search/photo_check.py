"""The report wizard's instant answer to one photo: does it show the reported animal?

The same rule as the report itself (``query_photos.find_animal``), so a photo the wizard accepts
is one the report accepts: the pet-only detector's pet boxes, each judged by the species head
(people beside it blurred first); nothing is stored, and a photo of a person is never more than
a "no dog found" answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from embeddings.images import ImageSource, load_rgb
from search_party.errors import UserError
from search_party.search.query_photos import SPECIES, find_animal, not_found_message

if TYPE_CHECKING:
    from search_party.vision import Models

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PhotoCheck:
    found: bool
    species: str
    message: str
    box: Box | None  # the largest box of the species, in the upright photo's pixels
    width: int
    height: int


def check_photo(photo: ImageSource, species: str, models: Models) -> PhotoCheck:
    """Whether ``photo`` shows a ``species``; raises ImageError for a file that is not a readable
    image and UserError for an unknown species."""
    if species not in SPECIES:
        raise UserError(f"species {species!r} is not supported: report a dog or a cat")
    rgb = load_rgb(photo)
    animal = find_animal(rgb, species, models)
    height, width = rgb.shape[:2]
    if animal.box is not None:
        return PhotoCheck(True, species, f"{species} found in this photo", animal.box, width, height)
    message = not_found_message(species, animal.seen, "this photo").replace("try one where", "try another where")
    return PhotoCheck(False, species, message, None, width, height)
