"""Identity vectors: unit rows, and the one vector that stands for several views of an animal."""

from __future__ import annotations

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def aggregate(vectors: np.ndarray) -> np.ndarray:
    """One L2-normalised vector for (k, dim) vectors of one animal: the normalised mean of unit
    rows (a few views average out pose and blur)."""
    if len(vectors) == 0:
        raise ValueError("an aggregate needs at least one vector")
    return unit_rows(unit_rows(vectors).mean(axis=0))
