"""`search-party bench ingest CLIP...`: how fast clips become sightings, against decoding them alone.

The floor is PyAV decoding every frame of the same clip with FFmpeg's threads and nothing else:
no ingest can beat reading the clip.  Floor and ingest runs alternate, so a busy machine slows
both alike; each is reported as the median of ``--repeats`` runs, after the models are loaded and
have seen one frame (a worker keeps them loaded).  Each clip's codec, size and key-frame layout
(GOP) are printed beside its figures; given several clips, one table row per clip.  The test
clips and the command that makes each are in README.md ("Measure it").
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import av
import click

from embeddings.detector import DETECTORS, PetDetector
from embeddings.embedder import SOURCES, Embedder, crop_box
from search_party.config import load_settings
from search_party.ingest.options import IngestOptions
from search_party.ingest.pipeline import process_clip
from search_party.ingest.video.decode import ClipInfo, probe_clip, upright_rgb
from search_party.store.clip_results import ClipResult
from search_party.vision import DETECTOR_THREADS, Models, decode_threads, load_models

STAGES = ("probe", "decode", "motion", "prepare", "detect", "second_look", "track", "redact", "embed",
          "thumbnail")


def decode_alone(path: Path) -> float:
    """Wall seconds to decode every frame of the clip with PyAV (FFmpeg threads on), no more."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - start


def _warm_up(info: ClipInfo, detector: PetDetector, embedder: Embedder) -> None:
    with av.open(str(info.path)) as container:
        frame = next(container.decode(video=0))
    rgb = upright_rgb(frame, info.rotation)
    detector.predict(rgb)
    height, width = rgb.shape[:2]
    embedder.predict([crop_box(rgb, (width * 0.4, height * 0.4, width * 0.6, height * 0.6), 0.0)])


def run_bench(path: Path, models: Models, repeats: int, options: IngestOptions) -> dict:
    info = probe_clip(path, max_clip_seconds=options.max_clip_seconds,
                      max_pixels=options.max_pixels)
    detector, embedder = models.detector, models.embedder
    _warm_up(info, detector, embedder)
    floors, runs = [], []
    for _ in range(repeats):
        floors.append(decode_alone(path))
        runs.append(process_clip(path, start_time=None, models=models, options=options))
    runs.sort(key=lambda r: r.stats.wall_seconds)
    median: ClipResult = runs[(len(runs) - 1) // 2]
    stats = median.stats
    floor = statistics.median(floors)
    return {
        "clip": str(path),
        "codec": stats.codec,
        "gop_seconds": None if info.gops.longest_gap == float("inf") else round(info.gops.longest_gap, 2),
        "bframes": info.gops.reordered,
        "gops": stats.gops,
        "gops_decoded": stats.gops_decoded,
        "keyframe_gate": options.keyframe_gate,
        "width": stats.width,
        "height": stats.height,
        "clip_seconds": round(stats.clip_seconds, 3),
        "wall_seconds": round(stats.wall_seconds, 3),
        "realtime_factor": round(stats.clip_seconds / stats.wall_seconds, 2),
        "decode_alone_seconds": round(floor, 3),
        "decode_ratio": round(stats.wall_seconds / floor, 3),
        "frames_in_clip": stats.frames_in_clip,
        "frames_decoded": stats.frames_decoded,
        "frames_motion_checked": stats.frames_motion_checked,
        "frames_detected": stats.frames_detected,
        "crops_embedded": stats.crops_embedded,
        "sightings": len(median.sightings),
        "labels": [s.label for s in median.sightings],
        "ms_per_stage": {k: round(v, 1) for k, v in stats.ms_per_stage.items()},
        "repeats": repeats,
        "detector": detector.name,
        "embedder": embedder.version,
        "detector_threads": DETECTOR_THREADS,
        "decode_threads": options.decode_threads,
        "sample_fps": options.sample_fps,
        "max_gap_seconds": options.max_gap_seconds,
    }


def _gop(r: dict) -> str:
    gop = f"GOP {r['gop_seconds']:g} s" if r["gop_seconds"] is not None else "one key frame"
    return gop + (", B-frames" if r["bframes"] else "")


def _gated(r: dict) -> str:
    return f"{r['gops_decoded']} of {r['gops']} spans" if r["gops"] else "every frame"


def _formats_table(results: list[dict]) -> str:
    """One row per clip: the format beside the figures."""
    head = ("clip", "codec", "size", "GOP", "clip-s/wall-s", "decode alone (x real time)", "wall/decode alone",
            "decoded", "sightings")
    rows = [head] + [(
        Path(r["clip"]).name, r["codec"], f"{r['width']}×{r['height']}", _gop(r), f"{r['realtime_factor']:.1f}",
        f"{r['clip_seconds'] / r['decode_alone_seconds']:.1f}", f"{r['decode_ratio']:.2f}", _gated(r),
        ", ".join(r["labels"]) or "none") for r in results]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _table(r: dict) -> str:
    stages = " · ".join(f"{k} {r['ms_per_stage'][k]:.0f}" for k in STAGES if k in r["ms_per_stage"])
    rows = [
        ("clip", f"{Path(r['clip']).name} ({r['codec']} {r['width']}×{r['height']}, {_gop(r)}, "
                 f"{r['clip_seconds']:.1f} s, {r['frames_in_clip']} frames)"),
        ("decoded in full", _gated(r) + ("" if r["keyframe_gate"] else " (key-frame gate off)")),
        ("clip seconds", f"{r['clip_seconds']:.2f}"),
        ("wall seconds", f"{r['wall_seconds']:.2f} (median of {r['repeats']})"),
        ("clip-s per wall-s", f"{r['realtime_factor']:.1f}"),
        ("decode alone (s)",
         f"{r['decode_alone_seconds']:.2f} (PyAV, every frame, FFmpeg threads)"),
        ("decode ratio", f"{r['decode_ratio']:.2f} (wall / decode alone)"),
        ("frames", f"decoded {r['frames_decoded']}, motion-checked {r['frames_motion_checked']}, "
                   f"detected {r['frames_detected']}; crops embedded {r['crops_embedded']}"),
        ("sightings", f"{r['sightings']} ({', '.join(r['labels']) or 'none'})"),
        ("ms per stage", stages),
        ("settings", f"{r['sample_fps']:g} fps sampled, detector at least every "
                     f"{r['max_gap_seconds']:g} s; {r['detector']} on {r['detector_threads']} "
                     f"thread(s) beside {r['decode_threads']} decoding, {r['embedder']}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@click.command("ingest")
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--repeats", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Ingest and decode-alone runs, alternated; medians are reported.")
@click.option("--detector", "detector_name", type=click.Choice(DETECTORS), default=None,
              help="Detector (default: SEARCH_PARTY_DETECTOR or picodet_s_416).")
@click.option("--embedder", "embedder_model", type=click.Choice(tuple(SOURCES)), default=None,
              help="Re-ID model (default: SEARCH_PARTY_EMBEDDER or trained); 'imagenet' is the "
                   "frozen baseline, the same network and speed.")
@click.option("--no-gate", is_flag=True, help="Decode every frame (the key-frame gate off): the baseline.")
@click.option("--no-second-look", is_flag=True,
              help="The whole-frame look only, no closer look at moving regions: the baseline.")
def ingest(clips: tuple[Path, ...], as_json: bool, repeats: int, detector_name: str | None,
           embedder_model: str | None, no_gate: bool, no_second_look: bool) -> None:
    """Ingest speed for each CLIP: clip-seconds per wall-second and the ratio to decoding alone,
    with the clip's codec, size and GOP; several clips give a table over the formats."""
    settings = load_settings()
    options = IngestOptions(decode_threads=decode_threads(settings.threads), keyframe_gate=not no_gate,
                            second_look_regions=0 if no_second_look else IngestOptions.second_look_regions)
    for clip in clips:
        probe_clip(clip, max_clip_seconds=options.max_clip_seconds, max_pixels=options.max_pixels)
    chosen = {"detector": detector_name, "embedder": embedder_model}
    models = load_models(settings.model_copy(update={k: v for k, v in chosen.items() if v}))
    results = [run_bench(clip, models, repeats, options) for clip in clips]
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results))
    elif len(results) == 1:
        click.echo(_table(results[0]))
    else:
        click.echo(_formats_table(results))
