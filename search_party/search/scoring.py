"""How well a sighting matches a lost dog's photos, who gets asked, and what counts as one candidate.

The score
---------
A report's photos are embedded one by one; a sighting holds the vectors of its best crops and
their aggregate (the normalised mean of the unit crop vectors, ``embeddings.vectors.aggregate``).  The
score is the cosine between the two aggregates::

    score = cos(mean_i p_i, mean_j c_j) = sum_ij (p_i . c_j) / (|sum_i p_i| |sum_j c_j|)

so *every* photo×crop pair takes part: it is the mean pairwise cosine, scaled up when each side
agrees with itself (several consistent views of one dog) and down when it does not.  It costs one
FAISS query per search (not one per photo) against the aggregate the index already holds, and
needs no per-crop vectors on the search path.  Rules compared on all of MPDD (imagenet embedder;
each of 95 dogs' kept-back sequence, up to 5 photos, against all 423 sightings cut from the other
sequences, no fence; recall at the threshold that lets 3 wrong sightings per search through):

    rule                                   hit@1   mAP    recall
    max over photo×crop pairs              0.968  0.908   0.851
    mean over photo×crop pairs             0.958  0.906   0.846
    max over photos vs the aggregate       0.958  0.895   0.853
    aggregate vs aggregate (this one)      0.989  0.904   0.863
    (max pair + this one) / 2              0.989  0.915   0.865

The blend is no better within noise and needs every crop vector of every candidate, so the
plain aggregate cosine it is.  On DogFaceNet (one photo, one crop each) all rules coincide.

The threshold
-------------
A score at or above ``threshold_for(model_version)`` makes a sighting a *candidate*, and
candidates become consent requests, best first, at most ``MAX_ASKS_PER_SEARCH`` per search.  The
thresholds below were calibrated with ``search-party eval search ../shared/data/reid/mpdd
--calibrate`` (``search_eval.calibrate``): the simulated neighbourhood is run at thresholds from
0.9 down in steps of 0.025, and the threshold kept is the *lowest* one at which a search sends, on
average over the calibration seeds, at most ``FALSE_ASK_BUDGET`` requests about sightings that
are not the lost dog.  A lower threshold only ever finds more of the lost dog's sightings, so the
lowest one inside that budget has the highest recall a neighbourhood can afford.  The budget
counts only the wrong requests, because the right ones are the point: a dog filmed at four
cameras should cause four requests.  Calibration runs on seeds 1 and 2; the figures reported
use seed 0, so the threshold is not tuned on the neighbourhood it is scored on.  New weights
need a new calibration: a different model puts the same dogs at different cosines.

One candidate per dog per camera visit
--------------------------------------
A camera that films one dog for a minute may upload many short clips, and a tracker may split
one visit into several tracks: that must be one request, not thirty.  Among the sightings that
match a search, those of one camera whose time spans lie within ``MERGE_GAP`` of each other are
one candidate when they also look alike: cosine >= ``same_visit_for(model_version)`` with the
group's mean vector.  Only matches are merged, so a dog that does not match the search is never
folded into a candidate, however close in time.  The agreement bar is lower than the match
threshold on purpose, and is set per model where a few per cent of pairs of single crops of one
dog in one MPDD sequence (pose changes within seconds) fall below it (``search-party eval search
../shared/data/reid/mpdd --same-visit --ids embeddings/weights/calibrate_ids_mpdd.txt``):

    model      bar   same sequence below   two different dogs at or above
    imagenet   0.50        3.6 %                     8.6 %     (all 1,032 MPDD crops)
    trained    0.50        2.3 %                     8.3 %     (the 14 calibration dogs' 192 crops)

(The trained model puts two different dogs' crops closer than the previous weights did, so its bar
rose from 0.40 with them; at 0.55 it would split 4.6 % of one dog's pairs.)

(imagenet would split 25 % of such pairs at its 0.65 match threshold.)  Comparing with the
group's mean rather than with any one member keeps a chain of look-alikes from bridging two
dogs.  A candidate's score is its best sighting's score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from embeddings.vectors import aggregate
from search_party.errors import ModelError

# Calibrated thresholds per embedder family, the middle part of an Embedder.version
# ("lite0-<family>-<weights key>"); see the module docstring for how.
# imagenet: MPDD, seeds 1 and 2, 0.9 down to 0.625: 0.65 sent 0.73 false requests per search
# (recall 0.90), 0.625 sent 1.01.
# trained: calibrated on the calibration dogs only (never trained on; the report dogs and the test
# fixture's are not among them), seeds 1 and 2, the budget scaled to each set's dog count against
# the 95-dog neighbourhood the budget was set for. Both sets give 0.60:
#   DogFaceNet, 104 dogs, budget 1.0: 0.75 false requests per search, recall 0.891, hit@1 0.981
#   MPDD, 14 dogs, budget 0.15: 0.14 false requests per search, recall 0.912, hit@1 1.000
# (`search-party eval search ../shared/data/reid/dogfacenet --model trained --calibrate
#   --ids embeddings/weights/calibrate_ids_dogfacenet.txt`; mpdd likewise with --false-ask-budget 0.15)
THRESHOLDS = {"imagenet": 0.65, "trained": 0.60}
FALSE_ASK_BUDGET = 1.0  # mean requests per search about other dogs the calibration may spend
MAX_ASKS_PER_SEARCH = 10  # hard cap per search on the neighbours' burden
MERGE_GAP = timedelta(minutes=2)
# Agreement bar for one visit, per embedder family: see "One candidate per dog per camera visit".
SAME_VISIT = {"imagenet": 0.5, "trained": 0.5}


def model_family(model_version: str) -> str:
    """The embedder family of a vector's model version, e.g. 'imagenet' or 'trained'."""
    parts = model_version.split("-")
    return parts[1] if len(parts) >= 3 else model_version


def threshold_for(model_version: str) -> float:
    """The calibrated match threshold for vectors made by ``model_version``; ModelError for a
    model nobody calibrated (searching it with a guessed threshold would ask at random)."""
    family = model_family(model_version)
    if family not in THRESHOLDS:
        raise ModelError(f"no calibrated match threshold for model {model_version!r}; calibrate one "
                         "with `search-party eval search DIR --calibrate` and add it to THRESHOLDS")
    return THRESHOLDS[family]


def same_visit_for(model_version: str) -> float:
    """The cosine two sightings of one camera need to be one visit, for ``model_version``."""
    family = model_family(model_version)
    if family not in SAME_VISIT:
        raise ModelError(f"no calibrated same-visit bar for model {model_version!r}; add it to "
                         "SAME_VISIT (see the scoring module's notes)")
    return SAME_VISIT[family]


def query_vector(photo_vectors: np.ndarray) -> np.ndarray:
    """The one vector a report is searched with: the aggregate of its photos' vectors."""
    return aggregate(np.atleast_2d(photo_vectors))


def best_photo(photo_vectors: np.ndarray, sighting_vector: np.ndarray) -> int:
    """Index of the report photo most like the sighting: the one shown beside the camera's crop."""
    return int(np.argmax(np.atleast_2d(photo_vectors) @ sighting_vector))


@dataclass(frozen=True)
class ScoredSighting:
    """A sighting inside a search's fence with its score; ``vector`` is its stored aggregate."""

    id: int
    camera_id: int
    first_time: datetime
    last_time: datetime
    score: float
    vector: np.ndarray


@dataclass(frozen=True)
class Candidate:
    """One dog's visit to one camera: what a camera owner is asked about, once."""

    camera_id: int
    sighting_ids: tuple[int, ...]  # best score first
    score: float
    first_time: datetime
    last_time: datetime
    best_photo: int  # index of the report photo most like the best sighting

    @property
    def sighting_id(self) -> int:
        """The best-scoring sighting: the crop shown to the camera's owner."""
        return self.sighting_ids[0]


def same_visit(a: ScoredSighting, b: ScoredSighting, agree: float,
               gap: timedelta = MERGE_GAP) -> bool:
    """Whether two sightings are one dog's one visit: same camera, time spans at most ``gap``
    apart, vectors agreeing at least as well as ``agree``."""
    if a.camera_id != b.camera_id:
        return False
    if b.first_time > a.last_time + gap or a.first_time > b.last_time + gap:
        return False
    return float(a.vector @ b.vector) >= agree


def merge_visits(scored: Iterable[ScoredSighting], photo_vectors: np.ndarray, agree: float,
                 gap: timedelta = MERGE_GAP) -> list[Candidate]:
    """Group a search's matched sightings into candidates (module docstring), best first.

    Per camera, in time order, a sighting joins the group it follows within ``gap`` whose mean
    vector it agrees with most (at least ``agree``); otherwise it starts a group.
    """
    by_camera: dict[int, list[ScoredSighting]] = defaultdict(list)
    for s in scored:
        by_camera[s.camera_id].append(s)
    candidates = []
    for sightings in by_camera.values():
        groups: list[list[ScoredSighting]] = []
        sums: list[np.ndarray] = []  # each group's vector sum: its mean's direction
        for s in sorted(sightings, key=lambda s: (s.first_time, s.id)):
            joinable = [(float(sums[i] @ s.vector) / float(np.linalg.norm(sums[i])), i)
                        for i, g in enumerate(groups)
                        if s.first_time <= max(m.last_time for m in g) + gap]
            best = max(joinable, default=None)
            if best is not None and best[0] >= agree:
                groups[best[1]].append(s)
                sums[best[1]] = sums[best[1]] + s.vector
            else:
                groups.append([s])
                sums.append(s.vector.astype(np.float64))
        for g in groups:
            g.sort(key=lambda m: (-m.score, m.id))
            candidates.append(Candidate(
                camera_id=g[0].camera_id, sighting_ids=tuple(m.id for m in g), score=g[0].score,
                first_time=min(m.first_time for m in g), last_time=max(m.last_time for m in g),
                best_photo=best_photo(photo_vectors, g[0].vector)))
    candidates.sort(key=lambda c: (-c.score, c.first_time, c.sighting_id))
    return candidates
