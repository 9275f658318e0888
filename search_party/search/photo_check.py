"""The report wizard's instant answer to one photo: does it show the reported animal?

Detection only (the pet-only detector): nothing is cropped, embedded or stored here, so a photo
of a person is never more than a "no dog found" answer.  The same rule as the report itself
(``query_photos.query_from_photos``): a photo counts when the detector finds the species in it,
so a photo the wizard accepts is one the report accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from embeddings.images import ImageSource, load_rgb
from search_party.errors import UserError
from search_party.search.query_photos import SPECIES

if TYPE_CHECKING:
    from embeddings.detector import PetDetector

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PhotoCheck:
    found: bool
    species: str
    message: str
    box: Box | None  # the largest box of the species, in the upright photo's pixels
    width: int
    height: int


def check_photo(photo: ImageSource, species: str, detector: PetDetector) -> PhotoCheck:
    """Whether ``photo`` shows a ``species``; raises ImageError for a file that is not a readable
    image and UserError for an unknown species."""
    if species not in SPECIES:
        raise UserError(f"species {species!r} is not supported: report a dog or a cat")
    rgb = load_rgb(photo)
    found = detector.predict(rgb)
    wanted = [d for d in found if d.label == species]
    height, width = rgb.shape[:2]
    if wanted:
        best = max(wanted, key=lambda d: ((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), d.score))
        return PhotoCheck(True, species, f"{species} found in this photo", best.box, width, height)
    others = sorted({d.label for d in found})
    seen = f" (it seems to show a {' and a '.join(others)})" if others else ""
    return PhotoCheck(False, species, f"no {species} found in this photo{seen} — try another where the "
                      f"{species} is clearly visible", None, width, height)
