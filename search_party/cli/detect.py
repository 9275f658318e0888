"""`search-party detect IMAGE...`: dog and cat boxes per image, and only a count of people.

Person regions are never described beyond how many there are: the detector finds them only so
that they can be blurred.
"""

from __future__ import annotations

import json

import click

from embeddings.detector import DETECTORS, Detection, PetDetector
from embeddings.images import load_rgb
from search_party.config import load_settings
from search_party.errors import ImageError


def _pet_dict(det: Detection) -> dict:
    return {"label": det.label, "score": round(det.score, 4), "box": [round(v, 1) for v in det.box]}


def _describe(path: str, pets: list[Detection], persons: int) -> str:
    lines = [f"{path}: {len(pets)} pet(s), {persons} person region(s)"]
    for det in pets:
        x1, y1, x2, y2 = det.box
        lines.append(f"  {det.label} {det.score:.2f}  box {x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}")
    return "\n".join(lines)


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image: path, pets, persons.")
@click.option(
    "--detector",
    type=click.Choice(DETECTORS),
    default=None,
    help="Detector graph (default: $SEARCH_PARTY_DETECTOR, else picodet_s_416).",
)
def detect(images: tuple[str, ...], as_json: bool, detector: str | None) -> None:
    """Find dogs and cats in IMAGES; people are only counted (their regions get blurred)."""
    settings = load_settings()
    model = PetDetector.load(detector or settings.detector, settings.vision_runtime())
    failed = 0
    for path in images:
        try:
            rgb = load_rgb(path)
        except ImageError as exc:
            click.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        pets = model.predict(rgb)
        persons = len(model.person_boxes(rgb))
        if as_json:
            click.echo(json.dumps({"path": path, "pets": [_pet_dict(p) for p in pets], "persons": persons}))
        else:
            click.echo(_describe(path, pets, persons))
    if failed:
        # Exit status 2 like every other user error; the per-file lines above say which and why.
        raise SystemExit(2)
