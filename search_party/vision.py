"""The domain's one door to the vision models: the pet detector, the re-ID embedder and the
dog-or-cat classifier its settings name, each loaded once per process through the vision
package's cache and then shared by every thread."""

from __future__ import annotations

import os
from dataclasses import dataclass

from embeddings.detector import PetDetector
from embeddings.embedder import SOURCES, Embedder, exported_graph
from embeddings.species import DEFAULT_HEAD, FEATURES, SpeciesClassifier
from search_party.config import Settings

# onnxruntime threads for the shared detector.  One: on two cores a second thread saves at most
# 4 ms of a 24 ms PicoDet-416 call and costs 8 ms or more of CPU, which ingest's decoder needs.
DETECTOR_THREADS = 1


@dataclass(frozen=True)
class Models:
    detector: PetDetector
    embedder: Embedder
    species: SpeciesClassifier


def load_models(settings: Settings) -> Models:
    """The models for these settings (loaded on first use, then shared)."""
    runtime = settings.vision_runtime()
    return Models(PetDetector.cached(settings.detector, runtime, threads=DETECTOR_THREADS),
                  Embedder.cached(settings.embedder, runtime), SpeciesClassifier.cached(DEFAULT_HEAD, runtime))


def model_files(settings: Settings) -> tuple[str, ...]:
    """The registry names of every file these settings load: the detector, the species head, and
    the source weights of each embedder they run (the re-ID one and the ImageNet one the species
    head reads) whose ONNX graph is not exported yet; a server given exported graphs (README: "A
    server without torch") never reads those weights."""
    runtime = settings.vision_runtime()
    sources = [SOURCES[name] for name in dict.fromkeys((settings.embedder, FEATURES))
               if not exported_graph(name, runtime).is_file()]
    return tuple(dict.fromkeys((settings.detector, *sources, DEFAULT_HEAD)))


def decode_threads(cores: int | None = None) -> int:
    """FFmpeg threads for ingest's decoder: every core (``cores``, default all of this machine's;
    the settings' ``threads``) but the one the detector works on.  On two cores that is one
    thread, which decodes with a quarter less CPU than FFmpeg's own choice (frame threads), and no
    decoding thread fights the detector for its core."""
    return max(1, (cores or os.cpu_count() or 1) - DETECTOR_THREADS)
