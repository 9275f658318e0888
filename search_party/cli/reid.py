"""`search-party eval reid` scores the re-ID models; `search-party train` reproduces the weights."""

from __future__ import annotations

import json
from pathlib import Path

import click

from embeddings import reid_data
from embeddings.camera_effects import DEGRADATIONS
from embeddings.embedder import SOURCES, Embedder
from embeddings.evaluate import RERANKERS, evaluate, evaluate_degraded
from embeddings.registry import WEIGHTS_DIR as WEIGHTS
from search_party.config import load_settings
from search_party.errors import UserError


def read_labelled(directory: Path, ids_file: Path | None) -> tuple[set[str] | None, list]:
    """The identities named by ``--ids`` (None: all) and the labelled images of DIRECTORY,
    refused in one line when either path is not there."""
    if not directory.is_dir():
        raise UserError(f"{directory} is not a folder of <identity>/<image> files")
    ids = None
    if ids_file is not None:
        if not ids_file.is_file():
            raise UserError(f"--ids {ids_file}: no such file")
        ids = reid_data.read_ids_file(ids_file)
    return ids, reid_data.read_folder(directory, ids)


@click.command(name="reid")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model, one per line.")
@click.option("--ids", "ids_file", type=click.Path(path_type=Path),
              help="Score only the identities listed in FILE (one per line), e.g. the validation "
                   "dogs that `search-party train` held out.")
@click.option("--rerank", type=click.Choice(RERANKERS), default="none", show_default=True,
              help="Re-rank each query's gallery: 'qe' = alpha query expansion.")
@click.option("--degrade", "degradations", type=click.Choice(DEGRADATIONS), multiple=True,
              help="Also rank clean queries against the gallery seen through this camera effect "
                   "(repeatable), printed beside the clean result with the drop.")
def eval_reid(directory: Path, as_json: bool, ids_file: Path | None, rerank: str,
              degradations: tuple[str, ...]) -> None:
    """Re-ID accuracy on DIRECTORY (<identity>/<image>, optional labels.csv with path, identity, s).

    Every image is a query against all the others, except the same dog in the same sequence;
    the trained model and the frozen ImageNet backbone are reported side by side.  With
    --degrade ir|lowres|blur|jpeg|overhead the queries stay clean (an owner's photo) and the
    gallery is degraded (a camera's view), one seeded degradation per image.
    """
    ids, items = read_labelled(directory, ids_file)
    if len(items) < 2:
        raise UserError(f"{directory} holds {len(items)} labelled image(s)"
                        f"{' of the listed identities' if ids is not None else ''}; need at least 2")
    runtime = load_settings().vision_runtime()
    rows = []
    for model in SOURCES:
        embedder = Embedder.load(model, runtime)
        if degradations:
            for view, scores in evaluate_degraded(embedder.predict, items, degradations, rerank).items():
                rows.append((model, view, scores))
        else:
            rows.append((model, "clean", evaluate(embedder.predict, items, rerank=rerank)))
    dogs = len({it.identity for it in items})
    skipped = rows[0][2].skipped
    note = (f"{len(items)} images of {dogs} dogs; {skipped} queries skipped "
            "(no image of the same dog in another sequence)")
    clean = {model: s for model, view, s in rows if view == "clean"}
    if as_json:
        click.echo(note, err=True)
        for model, view, s in rows:
            click.echo(json.dumps({"model": model, **({"gallery": view} if degradations else {}),
                                   "queries": s.queries, "rank1": round(s.rank1, 4),
                                   "rank5": round(s.rank5, 4), "mAP": round(s.mAP, 4)}))
        return
    click.echo(note + (f"; re-ranking: {rerank}" if rerank != "none" else ""))
    click.echo(f"{'model':<10} {'gallery':<9} {'queries':>7} {'rank-1':>7} {'rank-5':>7} {'mAP':>7} {'mAP drop':>8}")
    for model, view, s in rows:
        drop = "" if view == "clean" else f"{clean[model].mAP - s.mAP:>8.3f}"
        line = f"{model:<10} {view:<9} {s.queries:>7} {s.rank1:>7.3f} {s.rank5:>7.3f} {s.mAP:>7.3f} {drop}"
        click.echo(line.rstrip())


@click.command(name="reid")
@click.argument("data_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where reid_lite0.pt and val_ids_<folder>.txt go "
                   "(default: $SEARCH_PARTY_DATA_DIR/reid_training).")
@click.option("--device", default=None, help="cuda or cpu (default: cuda when present).")
@click.option("--member", "members", multiple=True,
              help="Train only this member of the committed soup (repeatable; default: all).")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Train one recipe instead of the soup: Recipe() with these fields changed, "
                   "e.g. --set classifier=softmax --set epochs=30 (see embeddings/train.py).")
@click.option("--time-budget", type=float, default=None,
              help="With --set: seconds; run only the whole epochs that fit (the count is recorded).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Start from these weights (e.g. embeddings/weights/reid_lite0.pt) instead of ImageNet.")
def train_command(data_dirs: tuple[Path, ...], out: Path | None, device: str | None,
                  members: tuple[str, ...], overrides: tuple[str, ...],
                  time_budget: float | None, init: Path | None) -> None:
    """Fine-tune the re-ID embedder on identity folders, split 70/30 by identity.

    Without --set it reproduces the soup of GPU fine-tunes and averages them.  With
    --set cached_views=N (and train_from_block >= 1) it trains on two CPU cores: each image's
    N augmented views run once through the frozen blocks and are kept, the rest is trained,
    resumably, and scored on the calibration dogs (embeddings/weights/calibrate_ids_*.txt).
    Example: search-party train ../shared/data/reid/mpdd ../shared/data/reid/dogfacenet
    Needs the [train] extra.
    """
    for d in data_dirs:
        if not d.is_dir():
            raise UserError(f"{d} is not a folder of <identity>/<image> files")
    try:
        import torch

        from embeddings import train as trainer
    except ImportError as exc:
        raise UserError(f"training needs torch ({exc.name} is missing): pip install -e '.[train]'") from None
    out = out or load_settings().data_dir / "reid_training"
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    unknown = sorted(set(members) - set(trainer.SOUP))
    if unknown:
        raise UserError(f"--member {unknown[0]}: not a soup member; choose from {', '.join(trainer.SOUP)}")
    if not overrides:
        trainer.train_soup(list(data_dirs), out, list(members or trainer.SOUP), device, log=click.echo)
        return
    fields = {f.name: str(f.type) for f in trainer.fields(trainer.Recipe)}
    values: dict[str, object] = {}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in fields or not value:
            raise UserError(f"--set {item}: expected NAME=VALUE with NAME one of {', '.join(fields)}")
        try:
            values[name] = trainer.parse_field(fields[name], value)
        except ValueError:
            raise UserError(f"--set {item}: {value!r} is not a valid {fields[name]}") from None
    recipe = trainer.recipe_from_args(values)
    if recipe.cached_views > 0:
        from embeddings import cached_training, reid_data

        calibrate = {d.name: reid_data.read_ids_file(WEIGHTS / f"calibrate_ids_{d.name}.txt")
                     for d in data_dirs if (WEIGHTS / f"calibrate_ids_{d.name}.txt").is_file()}
        cached_training.train_cached(list(data_dirs), out, recipe, calibrate_ids=calibrate, init=init,
                                     log=click.echo)
        return
    trainer.train(list(data_dirs), out, recipe, device, time_budget, init=init, log=click.echo)
