"""`search-party eval search` (accuracy and burden in a simulated neighbourhood) and
`search-party bench search` (latency and memory at 10k–1M sightings)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
import faiss
import numpy as np

from embeddings import reid_data
from embeddings.embedder import SOURCES, Embedder
from embeddings.images import load_rgb
from search_party.cli.reid import read_labelled
from search_party.config import PROJECT_ROOT, load_settings
from search_party.errors import UserError
from search_party.measure import search_bench, search_eval
from search_party.search import scoring
from search_party.store.index_kinds import INDEX_KINDS
from search_party.store.vector_index import FLAT_LIMIT

CALIBRATION_SEEDS = [1, 2]
DEFAULT_DOGS = PROJECT_ROOT.parent / "shared" / "data" / "reid" / "mpdd"


def _embedder(model: str | None) -> Embedder:
    settings = load_settings()
    return Embedder.load(model or settings.embedder, settings.vision_runtime())


def _progress(done: int, total: int) -> None:
    click.echo(f"\rembedding {done}/{total} images", err=True, nl=done == total)


_EVAL_HEAD = f"{'searches':>8} {'hit@1':>6} {'hit@5':>6} {'asks/search':>11} {'false asks':>10} {'recall':>6}"


def _eval_row(result: search_eval.SearchEvalResult) -> str:
    return (f"{result.searches:>8} {result.hit1:>6.3f} {result.hit5:>6.3f} {result.asks_per_search:>11.2f} "
            f"{result.false_asks_per_search:>10.2f} {result.recall:>6.3f}")


@click.command(name="search")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object: searches, hit1, hit5, "
              "asks_per_search, recall.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which simulated neighbourhood.")
@click.option("--model", type=click.Choice(tuple(SOURCES)), default=None,
              help="Embedder (default: SEARCH_PARTY_EMBEDDER, else the trained one).")
@click.option("--ids", "ids_file", type=click.Path(path_type=Path),
              help="Only the identities listed in FILE, e.g. the validation dogs.")
@click.option("--threshold", type=float, default=None,
              help="Match threshold (default: the model's calibrated one).")
@click.option("--index", "index_kind", type=click.Choice(INDEX_KINDS), default="flat", show_default=True,
              help="FAISS index form: flat (exact, what the store builds at this size) or sq8 "
                   "(8 bits per dimension), to measure what the smaller form costs in accuracy.")
@click.option("--calibrate", is_flag=True,
              help=f"Sweep thresholds on seeds {CALIBRATION_SEEDS} and print the lowest one that "
                   "keeps false requests per search within the budget.")
@click.option("--false-ask-budget", type=click.FloatRange(0, 100), default=scoring.FALSE_ASK_BUDGET,
              show_default=True, help="With --calibrate: mean requests per search about other dogs "
              "allowed (scale it down for a folder with fewer dogs than a neighbourhood holds).")
@click.option("--same-visit", is_flag=True,
              help="Print, per agreement bar, the share of one dog's same-sequence crop pairs below it "
                   "and of two dogs' pairs at or above it (how SAME_VISIT is set).")
@click.option("--fusion", is_flag=True,
              help="Compare one owner photo and one crop per sighting with all of them (multi-query, "
                   "multi-crop fusion), at the same threshold and neighbourhood.")
def eval_search(directory: Path, as_json: bool, seed: int, model: str | None, ids_file: Path | None,
                threshold: float | None, index_kind: str, calibrate: bool,
                false_ask_budget: float, same_visit: bool, fusion: bool) -> None:
    """Lost-dog searches in a neighbourhood simulated from DIRECTORY (<identity>/<image>, optional
    labels.csv with path, identity, s): hit@1, hit@5, consent requests per search, recall."""
    _, items = read_labelled(directory, ids_file)
    searched = len(search_eval.searchable_dogs(items))
    if searched == 0:
        raise UserError(f"{directory} has no dog with images from two or more sequences: nothing to "
                        "keep back as the owner's photos")
    dogs = len({it.identity for it in items})
    data = search_eval.embed_folder(items, _embedder(model), progress=None if as_json else _progress)
    if calibrate:
        chosen, rows = search_eval.calibrate(data, CALIBRATION_SEEDS, false_ask_budget)
        click.echo(f"calibration on seeds {CALIBRATION_SEEDS}, model {data.model_version}")
        click.echo(f"{'threshold':>9} {'hit@1':>6} {'hit@5':>6} {'asks/search':>11} {'false asks':>10} {'recall':>6}")
        for r in rows:
            click.echo(f"{r.threshold:>9.3f} {r.hit1:>6.3f} {r.hit5:>6.3f} {r.asks_per_search:>11.2f} "
                       f"{r.false_asks_per_search:>10.2f} {r.recall:>6.3f}")
        click.echo(f"lowest threshold within {false_ask_budget:g} false requests per search: "
                   f"{chosen:.3f}")
        return
    if same_visit:
        bars = search_eval.same_visit_table(data, np.round(np.arange(0.2, 0.75, 0.05), 2))
        click.echo(f"model {data.model_version}; {bars[0].pairs[0]} same-sequence pairs, "
                   f"{bars[0].pairs[1]} pairs of two dogs; bar in use {scoring.same_visit_for(data.model_version):g}")
        click.echo(f"{'bar':>5} {'same sequence below':>19} {'two dogs at or above':>20}")
        for b in bars:
            click.echo(f"{b.bar:>5.2f} {b.same_sequence_below:>19.1%} {b.other_dogs_at_or_above:>20.1%}")
        return
    if fusion:
        results = [(e.name, search_eval.evaluate(data, seed, threshold, index_kind, e)) for e in search_eval.FUSION]
        if as_json:
            click.echo(json.dumps({name: r.as_json() for name, r in results}))
            return
        click.echo(f"{len(data.items)} images of {dogs} dogs, {searched} searched; model {data.model_version}; "
                   f"seed {seed}; threshold {results[0][1].threshold:.3f}")
        click.echo(f"{'evidence':<26} {_EVAL_HEAD}")
        for name, r in results:
            click.echo(f"{name:<26} {_eval_row(r)}")
        return
    result = search_eval.evaluate(data, seed, threshold, index_kind)
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    click.echo(f"{len(data.items)} images of {dogs} dogs, {searched} searched; model {data.model_version}; "
               f"seed {seed}; threshold {result.threshold:.3f}; index {index_kind}")
    click.echo(f"{result.cameras} cameras ({search_eval.CAMERA_DENSITY:g}/km²), {result.sightings} "
               f"sightings, {result.in_fence_share:.0%} of them inside their dog's "
               f"{search_eval.SEARCH_RADIUS_M:.0f} m fence")
    click.echo(_EVAL_HEAD)
    click.echo(_eval_row(result))


@click.command(name="search")
@click.option("--sightings", "count", type=click.IntRange(100, 5_000_000), required=True,
              help="How many sightings the simulated city holds (e.g. 10000, 100000, 1000000).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: sightings, p50_ms, p95_ms, peak_mb, naive_p95_ms, report_p50_ms, "
                   "report_p95_ms, faiss_p95_ms, first_report_ms, rss_first_mb, rss_last_mb, "
                   "anon_first_mb, anon_last_mb.")
@click.option("--searches", type=click.IntRange(10, 10_000), default=200, show_default=True)
@click.option("--reports", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="Lost reports searched along the real path (the index as a server holds it, up to "
                   "the consent requests stored).")
@click.option("--index", "index_kind", type=click.Choice(INDEX_KINDS), default=None,
              help=f"FAISS index: flat (exact float32) or sq8 (8 bits per dimension, 4× smaller). "
                   f"Default: flat up to {FLAT_LIMIT:,} sightings, sq8 above.")
@click.option("--model", type=click.Choice(tuple(SOURCES)), default=None,
              help="Embedder that makes the real vectors the synthetic ones are mixed from "
                   "(default: SEARCH_PARTY_EMBEDDER, else the trained one).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Identity folder of real dog crops the vectors are derived from "
                   "(default: ../shared/data/reid/mpdd).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the temporary store goes (1M sightings take ~6 GB of disk).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="FAISS threads. A search is one query vector and FAISS spreads queries over "
                   "threads, so more only add overhead (2 threads were 2.5x slower on 2 cores).")
def bench_search(count: int, as_json: bool, searches: int, reports: int, index_kind: str | None,
                 model: str | None, data_dir: Path | None, workdir: Path | None, threads: int) -> None:
    """Milliseconds per search (2 km radius, 5 photos) and peak memory, beside a naive search; then
    the real path of lost reports with the index as a running server holds it, and its memory."""
    data_dir = data_dir or DEFAULT_DOGS
    items = reid_data.read_folder(data_dir) if data_dir.is_dir() else []
    if len(items) < search_bench.PHOTOS:
        raise UserError(f"{data_dir} holds {len(items)} labelled dog images; the bench needs real "
                        "crops to derive its vectors from: pass --data DIR, e.g. tests/fixtures/reid/mpdd")
    faiss.omp_set_num_threads(threads)
    index_kind = index_kind or ("flat" if count <= FLAT_LIMIT else "sq8")
    embedder = _embedder(model)
    base = np.concatenate([embedder.predict([load_rgb(it.path) for it in items[i:i + 64]])
                           for i in range(0, len(items), 64)])
    thumb = search_bench.small_jpeg(load_rgb(items[0].path))
    identities = np.array([it.identity for it in items])
    searched = search_bench.held_out(identities)
    say = (lambda text: None) if as_json else (lambda text: click.echo(f"\r{text}", err=True, nl=False))
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="search-bench-", dir=workdir) as tmp:
        store = search_bench.build_store(Path(tmp), count, base[~searched], embedder.version,
                                         thumb, index_kind=index_kind,
                                         progress=say)
        say("\n")
        plan = search_bench.plan_searches(base[searched], identities[searched], embedder.version,
                                          store, searches)
        figures = search_bench.run(store, plan)
        figures["peak_mb"] = search_bench.peak_mb()
        real = search_bench.run_reports(store, search_bench.plan_searches(
            base[searched], identities[searched], embedder.version, store, reports, seed=3))
        store.db.close()
    note = (f"synthetic sightings at city density (50 opted-in cameras/km², 5 dogs/camera/day, "
            f"30 days kept: {store.cameras:,} cameras, city radius {store.city_radius_m / 1000:.1f} km); "
            f"vectors mixed from {int((~searched).sum())} real crop embeddings ({embedder.version}) "
            f"plus noise, {len(np.unique(identities[searched]))} other dogs searched for; "
            f"index {index_kind}; {threads} FAISS threads; built in {store.build_s:.0f} s")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = (f"CPU time per search (what a core of its own takes): p50 {figures['cpu_p50_ms']:.1f} ms, "
           f"p95 {figures['cpu_p95_ms']:.1f} ms; load average during the run {load}")
    first, tenth, last = real["memory_first"], real["memory_tenth"], real["memory_last"]
    if as_json:
        click.echo(note, err=True)
        click.echo(cpu, err=True)
        click.echo(json.dumps({"sightings": count, "p50_ms": round(figures["p50_ms"], 2),
                               "p95_ms": round(figures["p95_ms"], 2), "peak_mb": round(figures["peak_mb"]),
                               "naive_p95_ms": round(figures["naive_p95_ms"], 2),
                               "report_p50_ms": round(real["report_p50_ms"], 2),
                               "report_p95_ms": round(real["report_p95_ms"], 2),
                               "faiss_p95_ms": round(real["faiss_p95_ms"], 2),
                               "first_report_ms": round(real["first_report_ms"], 2),
                               "rss_first_mb": round(first["rss"]), "rss_last_mb": round(last["rss"]),
                               "anon_first_mb": round(first["anon"]), "anon_last_mb": round(last["anon"])}))
        return
    click.echo(note)
    click.echo(f"{figures['searches']} searches, radius {search_bench.SEARCH_RADIUS_M / 1000:g} km, "
               f"{search_bench.PHOTOS} photos; fenced sightings per search: mean "
               f"{figures['fenced_mean']:.0f}, max {figures['fenced_max']}; matches per search "
               f"{figures['matched_mean']:.1f}")
    click.echo(f"{'sightings':>10} {'p50 ms':>7} {'p95 ms':>7} {'peak MB':>8} {'naive p50':>9} {'naive p95':>9}")
    click.echo(f"{count:>10,} {figures['p50_ms']:>7.1f} {figures['p95_ms']:>7.1f} {figures['peak_mb']:>8.0f} "
               f"{figures['naive_p50_ms']:>9.1f} {figures['naive_p95_ms']:>9.1f}")
    click.echo(cpu)
    click.echo(f"real path: {real['reports']} lost reports, each from its stored query vectors to its "
               f"consent requests stored ({real['asked_per_report']:.1f} asked per report), with the "
               f"index as a server holds it (mapped once, synced every report; {search_bench.STORED_PER_REPORT} "
               f"sightings stored and {search_bench.DELETED_PER_REPORT} deleted between reports)")
    click.echo(f"{'report p50':>10} {'report p95':>10} {'CPU p50':>7} {'CPU p95':>7} {'first (maps the file)':>21} "
               f"{'FAISS p50':>9} {'FAISS p95':>9} {'FAISS CPU p95':>13}")
    click.echo(f"{real['report_p50_ms']:>10.1f} {real['report_p95_ms']:>10.1f} {real['report_cpu_p50_ms']:>7.1f} "
               f"{real['report_cpu_p95_ms']:>7.1f} {real['first_report_ms']:>21.1f} "
               f"{real['faiss_p50_ms']:>9.1f} {real['faiss_p95_ms']:>9.1f} {real['faiss_cpu_p95_ms']:>13.1f}")
    click.echo(f"{'memory MB':>10} {'RSS':>7} {'anon':>7} {'file':>7}")
    for label, mem in (("before", real["memory_before"]), ("report 1", first), ("report 10", tenth),
                       (f"report {real['reports']}", last)):
        click.echo(f"{label:>10} {mem['rss']:>7.0f} {mem['anon']:>7.0f} {mem['file']:>7.0f}")
    click.echo(f"index after the run: {real['index_status']}; side index {real['side_index']} vectors, "
               f"{real['hidden']} hidden as deleted; load average {load}")
