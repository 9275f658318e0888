"""Re-ID scoring: every image a query against all the others, as a camera would see a dog again.

A query's gallery is every other image except those of the same dog in the same sequence (they
would be near-copies of the query).  Its positives are the same dog in other sequences; a query
with no positive is skipped.  Reported: rank-1, rank-5 and mAP over the scored queries.

Optional re-ranking, each usable at search time as it is used here:
- "qe", alpha query expansion (Radenović et al. 2018): the query is replaced by a weighted mean of
  itself and its top-k gallery hits, then searched again (``expand_queries``).
- "kr", k-reciprocal re-ranking (Zhong et al. 2017) of the query's 50-item shortlist: items that
  are each other's near neighbours are pulled together by a Jaccard distance over their
  neighbourhoods (``rerank_shortlist``).
In evaluation both see only the query's own gallery, so nothing excluded leaks back in.

``evaluate_degraded`` ranks clean queries against a gallery put through one camera effect
(embeddings/camera_effects.py), as an owner's phone photo is matched against a camera's view.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings import camera_effects
from embeddings.images import load_rgb
from embeddings.reid_data import LabelledImage

RERANKERS = ("none", "qe", "kr")
QE_K = 3
QE_ALPHA = 3.0
KR_SHORTLIST = 50
KR_K1 = 15
KR_K2 = 6
KR_LAMBDA = 0.3
_CHUNK = 256  # queries scored at once: bounds memory at chunk × n


@dataclass(frozen=True)
class ReidScores:
    queries: int  # queries scored
    skipped: int  # queries without any positive in another sequence
    rank1: float
    rank5: float
    mAP: float


def expand_queries(queries: np.ndarray, gallery: np.ndarray, k: int = QE_K, alpha: float = QE_ALPHA,
                   sims: np.ndarray | None = None, excluded: np.ndarray | None = None) -> np.ndarray:
    """Alpha query expansion: each query becomes normalise(q + Σ max(s_i, 0)^alpha · g_i) over its
    top-k gallery vectors g_i (similarity s_i).  ``excluded`` (queries × gallery, bool) marks
    gallery items a query may not use."""
    if sims is None:
        sims = queries @ gallery.T
    if excluded is not None:
        sims = np.where(excluded, -np.inf, sims)
    k = min(k, gallery.shape[0])
    if k == 0:
        return queries
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) ** alpha
    expanded = queries + np.einsum("qk,qkd->qd", weights, gallery[top])
    return (expanded / np.linalg.norm(expanded, axis=1, keepdims=True)).astype(np.float32)


def k_reciprocal_distances(vectors: np.ndarray, k1: int = KR_K1, k2: int = KR_K2,
                           lam: float = KR_LAMBDA) -> np.ndarray:
    """Re-ranked distances among a small set of unit vectors (n ≲ 100; costs n³).

    Each item's neighbourhood is its k1-reciprocal neighbours (each in the other's top k1),
    grown by the k1/2-reciprocal neighbours of those that mostly agree with it, weighted by
    exp(−distance) and smoothed over its k2 nearest items; the result mixes the Jaccard distance
    of two neighbourhoods with the original squared distance (weight ``lam``).
    """
    n = len(vectors)
    dist = np.maximum(2.0 - 2.0 * (vectors @ vectors.T), 0.0)
    order = np.argsort(dist, axis=1, kind="stable")

    def mutual(k: int) -> np.ndarray:
        near = np.zeros((n, n), dtype=bool)
        np.put_along_axis(near, order[:, :k + 1], True, axis=1)
        return near & near.T

    wide, narrow = mutual(k1), mutual(max(1, round(k1 / 2)))
    weights = np.zeros((n, n))
    for i in range(n):
        members = wide[i].copy()
        for j in np.flatnonzero(wide[i]):
            if (narrow[j] & wide[i]).sum() > 2 / 3 * narrow[j].sum():
                members |= narrow[j]
        w = np.exp(-dist[i]) * members
        weights[i] = w / w.sum()
    if k2 > 1:
        weights = weights[order[:, :k2]].mean(axis=1)
    overlap = np.minimum(weights[:, None, :], weights[None, :, :]).sum(axis=2)
    jaccard = 1.0 - overlap / (2.0 - overlap)
    return (1.0 - lam) * jaccard + lam * dist


def rerank_shortlist(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Indices of ``candidates`` (best first, already the query's shortlist) after k-reciprocal
    re-ranking of the query together with them."""
    if len(candidates) < 2:
        return np.arange(len(candidates))
    k1 = min(KR_K1, len(candidates) // 2)
    dist = k_reciprocal_distances(np.vstack([query[None, :], candidates]), k1=k1)
    return np.argsort(dist[0, 1:], kind="stable")


def score(vectors: np.ndarray, identities: Sequence[str], sequences: Sequence[str],
          rerank: str = "none", gallery: np.ndarray | None = None) -> ReidScores:
    """Rank-1, rank-5 and mAP of every image against all others (see the module docstring).

    ``sequences`` must be unique across identities (e.g. "dog/seq"); ``vectors`` unit length.
    ``gallery``, row for row the same images seen otherwise (e.g. through a camera effect), is
    what the queries are ranked against instead of ``vectors`` themselves.
    """
    if rerank not in RERANKERS:
        raise ValueError(f"unknown re-ranking {rerank!r}; choose one of {', '.join(RERANKERS)}")
    vectors = np.asarray(vectors, dtype=np.float32)
    gallery = vectors if gallery is None else np.asarray(gallery, dtype=np.float32)
    if gallery.shape != vectors.shape:
        raise ValueError(f"gallery {gallery.shape} does not match the queries {vectors.shape}")
    _, ids = np.unique(np.asarray(identities), return_inverse=True)
    _, seqs = np.unique(np.asarray(sequences), return_inverse=True)
    n = len(ids)
    hits1 = hits5 = 0
    ap_sum = 0.0
    scored = 0
    for start in range(0, n, _CHUNK):
        q = np.arange(start, min(n, start + _CHUNK))
        same_id = ids[q, None] == ids[None, :]
        excluded = same_id & (seqs[q, None] == seqs[None, :])
        positive = same_id & ~excluded
        keep = positive.any(axis=1)
        q, excluded, positive = q[keep], excluded[keep], positive[keep]
        if not len(q):
            continue
        sims = vectors[q] @ gallery.T
        if rerank == "qe":
            sims = expand_queries(vectors[q], gallery, sims=sims, excluded=excluded) @ gallery.T
        sims[excluded] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")
        if rerank == "kr":
            for row, query in enumerate(q):
                allowed = min(KR_SHORTLIST, int((~excluded[row]).sum()))
                short = order[row, :allowed]
                order[row, :allowed] = short[rerank_shortlist(vectors[query], gallery[short])]
        hits = np.take_along_axis(positive, order, axis=1)
        hits1 += int(hits[:, 0].sum())
        hits5 += int(hits[:, :5].any(axis=1).sum())
        found = np.cumsum(hits, axis=1)
        precision = found / np.arange(1, n + 1)
        ap_sum += float(((precision * hits).sum(axis=1) / hits.sum(axis=1)).sum())
        scored += len(q)
    if scored == 0:
        return ReidScores(0, n, float("nan"), float("nan"), float("nan"))
    return ReidScores(scored, n - scored, hits1 / scored, hits5 / scored, ap_sum / scored)


def embed_images(embed: Callable[[list[np.ndarray]], np.ndarray], items: Sequence[LabelledImage],
                 batch: int = 64, degrade: str | None = None) -> np.ndarray:
    """Decode (Pillow, EXIF-aware) and embed every image, a batch at a time to bound memory;
    with ``degrade``, each image first goes through that camera effect, seeded by the image's
    identity and name so every run and every model sees the same degraded copy."""
    def load(item: LabelledImage) -> np.ndarray:
        rgb = load_rgb(item.path)
        if degrade is None:
            return rgb
        seed = zlib.crc32(f"{degrade}/{item.identity}/{item.path.name}".encode())
        return camera_effects.degrade(rgb, degrade, np.random.default_rng(seed))

    parts = []
    for start in range(0, len(items), batch):
        parts.append(embed([load(it) for it in items[start:start + batch]]))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def evaluate(embed: Callable[[list[np.ndarray]], np.ndarray], items: Sequence[LabelledImage],
             rerank: str = "none") -> ReidScores:
    """Embed ``items`` once and score them."""
    vectors = embed_images(embed, items)
    return score(vectors, [it.identity for it in items], [it.sequence for it in items], rerank)


def evaluate_degraded(embed: Callable[[list[np.ndarray]], np.ndarray], items: Sequence[LabelledImage],
                      degradations: Sequence[str], rerank: str = "none") -> dict[str, ReidScores]:
    """Scores as an owner's clean photo meets a camera's view: clean queries against a gallery of
    the same images degraded by each camera effect; "clean" is the plain protocol, for the drop."""
    vectors = embed_images(embed, items)
    identities, sequences = [it.identity for it in items], [it.sequence for it in items]
    out = {"clean": score(vectors, identities, sequences, rerank)}
    for kind in degradations:
        out[kind] = score(vectors, identities, sequences, rerank,
                          gallery=embed_images(embed, items, degrade=kind))
    return out
