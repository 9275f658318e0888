"""The domain's one door to the vision models: the detector and embedder the settings name,
loaded once per process and then shared (onnxruntime sessions are safe to run from several
threads)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from embeddings.detector import PetDetector
from embeddings.embedder import Embedder
from search_party.config import Settings
from search_party.ingest.pipeline import DETECTOR_THREADS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Models:
    detector: PetDetector
    embedder: Embedder


_models: dict[tuple[str, str, Path], Models] = {}
_models_lock = threading.Lock()


def load_models(settings: Settings) -> Models:
    """The detector and embedder for these settings, loaded once per process and then shared
    (onnxruntime sessions are safe to run from several threads)."""
    key = (settings.detector, settings.embedder, settings.cache_dir)
    with _models_lock:
        if key not in _models:
            started = time.monotonic()
            _models[key] = Models(PetDetector.load(settings.detector, threads=DETECTOR_THREADS),
                                  Embedder.load(cache_dir=settings.cache_dir, model=settings.embedder))
            log.info("models loaded in %.1f s", time.monotonic() - started)
        return _models[key]

