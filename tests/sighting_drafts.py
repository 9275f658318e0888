"""Sighting drafts made from the real MPDD dogs of the fixture, the way the pipeline makes them.

For the storage and index tests, which need real vectors but not video: every (dog, sequence)
pair of tests/fixtures/reid/mpdd becomes one draft whose crops are that sequence's images,
embedded by the embedder that ships (``SHIPPED_EMBEDDER``, the default of Settings: the trained
one), aggregated and thumbnailed by embeddings.vectors and embeddings.redact exactly as ingest
does.  Tests about the ImageNet baseline name "imagenet" themselves.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np

from embeddings.embedder import Embedder
from embeddings.images import load_rgb
from embeddings.redact import thumbnail_jpeg
from embeddings.runtime import Runtime
from embeddings.species import DEFAULT_HEAD, SpeciesClassifier
from embeddings.vectors import aggregate
from search_party.config import Settings, load_settings
from search_party.store.clip_results import ClipResult, IngestStats, SightingDraft

MPDD = Path(__file__).resolve().parent / "fixtures" / "reid" / "mpdd"
T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
# The one place the tests name their embedder: whatever a fresh install runs, with its thresholds.
SHIPPED_EMBEDDER: str = Settings.model_fields["embedder"].default


def runtime() -> Runtime:
    """Where the tests' models are found and exported (the session's model cache, see conftest)."""
    return load_settings().vision_runtime()


def embedder() -> Embedder:
    return Embedder.cached(SHIPPED_EMBEDDER, runtime())


def species() -> SpeciesClassifier:
    return SpeciesClassifier.cached(DEFAULT_HEAD, runtime())


@lru_cache(maxsize=1)
def mpdd_drafts() -> dict[tuple[str, int], SightingDraft]:
    """{(identity, sequence): draft} for every sequence of every fixture dog (embedded once)."""
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    with (MPDD / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            groups[(row["identity"], int(row["s"]))].append(row["path"])
    keys = sorted(groups)
    paths = [p for key in keys for p in groups[key]]
    images = [load_rgb(MPDD / p) for p in paths]
    vectors = embedder().predict(images)
    # The species head reads ImageNet features: the embedder's own only when it is that one.
    same_features = embedder().version == species().features.version
    drafts, start = {}, 0
    for n, key in enumerate(keys):
        count = len(groups[key])
        crops = vectors[start:start + count]
        image = images[start]
        first = T0 + timedelta(minutes=n)
        drafts[key] = SightingDraft(
            label="dog", p_dog=species().of_animal(images[start:start + count],
                                                   features=crops if same_features else None),
            first_time=first, last_time=first + timedelta(seconds=5 + count),
            box=(0.0, 0.0, float(image.shape[1]), float(image.shape[0])), score=0.9,
            thumbnail_jpeg=thumbnail_jpeg(image, []), vector=aggregate(crops),
            crop_vectors=crops, model_version=embedder().version)
        start += count
    return drafts


def query_vector(identity: str, sequence: int) -> np.ndarray:
    """The embedding of the first crop of one dog's sequence (an owner's photo, say)."""
    return mpdd_drafts()[(identity, sequence)].crop_vectors[0]


def clip_result(drafts: list[SightingDraft]) -> ClipResult:
    """A processed clip's result holding these drafts (the stats of a short 720p clip)."""
    stats = IngestStats(clip_seconds=2.0, wall_seconds=0.5, frames_decoded=20,
                        frames_motion_checked=6, frames_detected=6, crops_embedded=len(drafts),
                        ms_per_stage={"decode": 100.0, "detect": 300.0}, width=1280, height=720,
                        codec="h264")
    return ClipResult(sightings=list(drafts), stats=stats, start_time=T0, start_source="given")
