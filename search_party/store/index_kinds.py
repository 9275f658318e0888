"""FAISS index forms the evaluation and the benchmark can compare, and what each costs.

- ``flat``: exact float32 vectors (``IDMap2,Flat``), 4 bytes per dimension — 5 KiB per 1280-d
  sighting, 4.9 GiB at a million.  What ``vector_index`` builds up to its flat limit.
- ``sq8``: 8-bit scalar quantisation per dimension (``IDMap2,SQ8``), 1 byte per dimension — a
  quarter of the memory, 1.2 GiB at a million.  Its only training is each dimension's range,
  taken from a sample in a second, where IVF-PQ needs k-means over the sample (many minutes at a
  million on two cores).  A geofenced search through an ``IDSelectorBatch`` still scores exactly
  the fenced ids, and reads a quarter of the bytes per scored sighting.  Its accuracy cost is
  measured with ``search-party eval search DIR --index sq8``.  What ``vector_index`` builds
  above its flat limit.
"""

from __future__ import annotations

import faiss
import numpy as np

INDEX_KINDS = ("flat", "sq8")


def new_index(kind: str, dim: int, sample: np.ndarray) -> faiss.Index:
    """An empty inner-product index of ``kind`` with sighting ids, trained on ``sample`` if it
    needs training (sq8: the range of each dimension)."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind {kind!r} is not one of {', '.join(INDEX_KINDS)}")
    index = faiss.index_factory(dim, "IDMap2,Flat" if kind == "flat" else "IDMap2,SQ8",
                                faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index
