"""`search-party bench vision`: ms per frame (detectors) and per crop (embedder), onnxruntime beside
torch eager."""

from __future__ import annotations

import json
from pathlib import Path

import click

from embeddings import vision_bench
from embeddings.detector import DETECTORS
from search_party.config import PROJECT_ROOT, load_settings
from search_party.errors import UserError

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"


def _table(result: dict) -> str:
    header = ("component", "model", "unit", "onnxruntime ms", "torch eager ms", "ort speed-up")
    lines = [header]
    for row in result["rows"]:
        ort, torch = row["onnxruntime_ms"], row["torch_ms"]
        lines.append((
            row["component"], row["model"], row["unit"], f"{ort:.1f}",
            "n/a" if torch is None else f"{torch:.1f}",
            "" if torch is None else f"{torch / ort:.1f}×",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.append("")
    out.extend(f"torch eager, {row['model']}: {row['torch_note']}" for row in result["rows"])
    out.append(
        f"median of {result['repeats']} runs over {result['frames']} frames "
        f"({', '.join(result['frame_sizes'])}) and {result['crops']} dog crops, "
        f"{result['threads']} threads on {result['cpus']} CPUs; data {result['data']}"
    )
    before, after = result["load_avg_1min"]
    out.append(
        f"load average (1 min) {before:.1f} before, {after:.1f} after: "
        "figures are only comparable on an otherwise idle machine"
    )
    return "\n".join(out)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder holding the bench videos and reid/mpdd (default: ../shared/data).")
@click.option("--repeats", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Runs over every frame and crop; the median is reported.")
@click.option("--crops", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="How many MPDD dog crops to embed.")
@click.option("--detector", "detectors", type=click.Choice(DETECTORS), multiple=True,
              help="Only these detectors (repeatable; default: all).")
def vision(as_json: bool, data_dir: Path | None, repeats: int, crops: int,
           detectors: tuple[str, ...]) -> None:
    """Milliseconds per frame (detector) and per crop (embedder), onnxruntime vs torch eager."""
    data_dir = data_dir or DEFAULT_DATA
    if not data_dir.is_dir():
        raise UserError(f"data folder {data_dir} not found; pass --data DIR (e.g. ../shared/data)")
    try:
        result = vision_bench.run(data_dir, repeats=repeats, crops=crops, detectors=detectors or DETECTORS,
                                  runtime=load_settings().vision_runtime())
    except FileNotFoundError as exc:
        raise UserError(f"{exc}; --data must hold the bench videos, images and reid/mpdd") from None
    click.echo(json.dumps(result) if as_json else _table(result))
