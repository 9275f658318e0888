"""`search-party train species` fits the dog-or-cat head; `search-party eval species` judges it
beside COCO's label on breeds and dogs it never saw (embeddings/species.py, species_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from embeddings import species, species_data
from embeddings.detector import PetDetector
from embeddings.embedder import Embedder
from embeddings.registry import WEIGHTS_DIR
from search_party.config import PROJECT_ROOT, load_settings
from search_party.errors import UserError

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"


def _data(data_dir: Path | None) -> Path:
    data_dir = data_dir or DEFAULT_DATA
    if not (data_dir / "breeds").is_dir() or not (data_dir / "reid").is_dir():
        raise UserError(f"{data_dir} has no breeds/ and reid/ folders; pass --data DIR (e.g. ../shared/data)")
    return data_dir


@click.command(name="species")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The data folder (default ../shared/data): reid/, breeds/, negatives/cats.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=WEIGHTS_DIR / f"{species.DEFAULT_HEAD}.json", show_default=True)
def train_species(data_dir: Path | None, out: Path) -> None:
    """Fit the dog-or-cat head on frozen ImageNet features (seconds once the crops are embedded)."""
    data = _data(data_dir)
    runtime = load_settings().vision_runtime()
    detector, features = PetDetector.load(runtime=runtime), Embedder.load(species.FEATURES, runtime)
    photos = [p for p in species_data.training_crops(data, detector) if p.crop is not None]
    vectors = np.vstack([features.predict([p.crop for p in photos[i:i + 64] if p.crop is not None])
                         for i in range(0, len(photos), 64)])
    is_dog = np.array([p.is_dog for p in photos])
    part = np.array([p.part for p in photos])
    train, calibrate = part == "train", part == "calibrate"
    weights, bias, losses = species.fit_calibrated((vectors[train], is_dog[train]),
                                                   (vectors[calibrate], is_dog[calibrate]))
    counts: dict[str, dict[str, int]] = {}
    for p in photos:
        counts.setdefault(f"{p.source} ({p.part})", {"dog": 0, "cat": 0})["dog" if p.is_dog else "cat"] += 1
    species.write_head(out, weights, bias, features.version,
                       {"data": counts, "calibration_log_loss_by_l2": losses})
    click.echo(f"wrote {out}; calibration log loss by L2: {losses}\n"
               + "\n".join(f"  {k}: {v['dog']} dogs, {v['cat']} cats" for k, v in counts.items()))


def _matrix(m: dict[str, dict[str, int]]) -> str:
    return f"dog→dog {m['dog']['dog']}, dog→cat {m['dog']['cat']}, cat→cat {m['cat']['cat']}, cat→dog {m['cat']['dog']}"


@click.command(name="species")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The data folder (default ../shared/data).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per set.")
def eval_species(data_dir: Path | None, as_json: bool) -> None:
    """Dog-or-cat confusion matrices on breeds and dogs never trained on: the head beside COCO's
    label of the same detector box."""
    data = _data(data_dir)
    runtime = load_settings().vision_runtime()
    detector = PetDetector.load(runtime=runtime)
    head = species.SpeciesClassifier.load(runtime=runtime)
    rows = []
    for name, photos in species_data.evaluation_sets(data, detector).items():
        crops = [p.crop for p in photos if p.crop is not None]
        rows.append(species_data.confusion(photos, head.predict(crops), species.SPECIES_FLOOR, name))
    if as_json:
        for r in rows:
            click.echo(json.dumps(r.__dict__))
        return
    click.echo(f"head: {head.name} on {head.features.version}; floor P(own species) < {species.SPECIES_FLOOR}")
    for r in rows:
        wrong_head = r.head["dog"]["cat"] + r.head["cat"]["dog"]
        wrong_coco = r.coco["dog"]["cat"] + r.coco["cat"]["dog"]
        judged = r.photos - r.no_pet
        click.echo(f"\n{r.name}: {r.photos} animals, detector found no pet in {r.no_pet}")
        click.echo(f"  species head  wrong {wrong_head}/{judged}  ({_matrix(r.head)}); "
                   f"own species under the floor: {r.under_floor}")
        click.echo(f"  COCO label    wrong {wrong_coco}/{judged}  ({_matrix(r.coco)})")
