"""`search-party bench vision`: ms per frame (detectors) and per crop (embedder), onnxruntime beside
torch eager; then pet recall per condition (normal, small, IR night, 1080p), the whole-frame look
alone beside it followed by ingest's second look (search_party.measure.vision_recall)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from embeddings import vision_bench
from embeddings.detector import DETECTORS, PetDetector
from search_party import vision as vision_models
from search_party.config import PROJECT_ROOT, load_settings
from search_party.errors import UserError
from search_party.measure import vision_recall

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


def _recall_table(recall: dict) -> str:
    header = ("condition", "frames", "recall first", "recall first+second", "false pets",
              "ms/frame first", "ms/frame first+second", "second looks")
    lines = [header]
    for r in recall["rows"]:
        n = max(r["frames"], 1)
        lines.append((
            r["condition"], str(r["frames"]), f"{r['found_first'] / n:.2f}", f"{r['found_both'] / n:.2f}",
            f"{r['false_first']} / {r['false_both']}", f"{r['ms_first']:.1f}", f"{r['ms_both']:.1f}",
            str(r["second_looks"]),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.append(
        f"{recall['detector']}; real MPDD dogs of the {recall['split']} split "
        f"({recall['per_dog']} crops each) over real CCTV frames; second look at up to "
        f"{recall['regions']} moving regions, only where the first look found no pet; "
        "false pets: frames with a pet box away from the dog (first / first+second)"
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
@click.option("--split", type=click.Choice(vision_recall.SPLITS), default="report", show_default=True,
              help="Whose dogs the recall is measured on (calibrate: to tune; report: to report).")
@click.option("--per-dog", type=click.IntRange(1, 100), default=4, show_default=True,
              help="Recall: crops of each dog, one test frame each, per condition.")
@click.option("--dogs", type=click.IntRange(1, 1000), default=None,
              help="Recall: only the first N dogs of the split (default: all).")
def vision(as_json: bool, data_dir: Path | None, repeats: int, crops: int,
           detectors: tuple[str, ...], split: str, per_dog: int, dogs: int | None) -> None:
    """Milliseconds per frame (detector) and per crop (embedder), onnxruntime vs torch eager;
    pet recall per condition, first look beside first + second look."""
    data_dir = data_dir or DEFAULT_DATA
    if not data_dir.is_dir():
        raise UserError(f"data folder {data_dir} not found; pass --data DIR (e.g. ../shared/data)")
    settings = load_settings()
    runtime = settings.vision_runtime()
    try:
        result = vision_bench.run(data_dir, repeats=repeats, crops=crops, detectors=detectors or DETECTORS,
                                  runtime=runtime)
        # Recall of the detector ingest runs (the settings'), with ingest's one thread.
        detector = PetDetector.load(settings.detector, runtime, threads=vision_models.DETECTOR_THREADS)
        result["recall"] = vision_recall.run(detector, data_dir, split=split, per_dog=per_dog, dogs=dogs)
    except FileNotFoundError as exc:
        raise UserError(f"{exc}; --data must hold the bench videos, images and reid/mpdd") from None
    click.echo(json.dumps(result) if as_json else _table(result) + "\n\n" + _recall_table(result["recall"]))
