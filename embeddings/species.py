"""Dog or cat: a logistic head on the frozen ImageNet features of the animal's crop.

The detector proposes *pet* boxes; which species a box holds is this model's call, not COCO's
label: on photos of breeds neither model was trained on, COCO's label called 9 of 235 dogs
"cat" and 5 of 98 cats "dog", this head 1 and 0 (``search-party eval species``; figures and
data in embeddings/MODEL_CARD.md).  It reads the ImageNet EfficientNet-Lite0 descriptor (the
frozen "imagenet" embedder), not the re-ID vector: re-ID training teaches a network to ignore
what all dogs share, and a head on the trained vectors made five times the mistakes.

Its output is a probability, kept with every sighting: a search for a dog also scores sightings
whose P(dog) is not negligible (``SPECIES_FLOOR``), so one wrong call never hides a dog.

The head is 1,280 weights and a bias in a small JSON file (``species_lite0.json``, pinned in the
registry), trained by ``fit`` with plain numpy gradient descent on class-balanced logistic loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import registry
from embeddings.embedder import Embedder
from embeddings.errors import ModelError
from embeddings.inference import InferenceModel
from embeddings.runtime import DEFAULT_RUNTIME, Runtime

SPECIES = ("dog", "cat")
DEFAULT_HEAD = "species_lite0"
FEATURES = "imagenet"  # the embedder whose vectors the head reads
# A species probability below this is negligible: a search for that species skips the sighting.
# One in twenty, fixed before any scoring: no true dog of the report or unseen-breed sets falls
# below it (MODEL_CARD.md), and a cat let through only costs a comparison, never a request.
SPECIES_FLOOR = 0.05


def species_probability(p_dog: float | np.ndarray, species: str) -> float | np.ndarray:
    """P(species) from P(dog)."""
    if species not in SPECIES:
        raise ValueError(f"species {species!r} is not one of {', '.join(SPECIES)}")
    return p_dog if species == "dog" else 1.0 - p_dog


def likely_species(p_dog: float) -> str:
    return "dog" if p_dog >= 0.5 else "cat"


@dataclass
class SpeciesClassifier(InferenceModel):
    """``predict(crops)`` -> P(dog) per RGB crop; ``from_features`` when the ImageNet vectors of
    the crops are at hand already."""

    name: str
    features: Embedder
    weights: np.ndarray  # (1280,) float32
    bias: float

    @classmethod
    def load(cls, name: str = DEFAULT_HEAD, runtime: Runtime = DEFAULT_RUNTIME) -> SpeciesClassifier:
        return cls.from_head(name, read_head(registry.locate(name, runtime)), Embedder.cached(FEATURES, runtime))

    @classmethod
    def from_head(cls, name: str, head: dict[str, Any], features: Embedder) -> SpeciesClassifier:
        """The head read from its file, on the features it was fitted on (and no others)."""
        if head["features"] != features.version:
            raise ModelError(f"the species head {name} was fitted on {head['features']} vectors, "
                             f"not {features.version}; refit it with `search-party train species`")
        return cls(name, features, np.asarray(head["weights"], np.float32), float(head["bias"]))

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.from_features(self.features.predict(crops))

    def of_animal(self, crops: list[np.ndarray], features: np.ndarray | None = None) -> float:
        """P(dog) of one animal seen in several crops: the mean of the crops' log-odds (each view
        is evidence).  ``features``: the crops' ImageNet descriptors, when already computed."""
        p = self.predict(crops) if features is None else self.from_features(features)
        p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
        return float(1.0 / (1.0 + np.exp(-np.mean(np.log(p / (1 - p))))))

    def from_features(self, vectors: np.ndarray) -> np.ndarray:
        """P(dog) for (n, 1280) ImageNet descriptors."""
        if len(vectors) == 0:
            return np.zeros(0, np.float32)
        return (1.0 / (1.0 + np.exp(-(np.asarray(vectors, np.float32) @ self.weights + self.bias)))).astype(np.float32)


L2_CHOICES = (1e-3, 1e-4, 1e-5, 1e-6)


def fit(vectors: np.ndarray, is_dog: np.ndarray, *, l2: float, steps: int = 5000,
        rate: float = 2.0) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression by full-batch gradient descent (the data are a few
    thousand unit vectors: seconds of numpy, no solver needed)."""
    x = np.asarray(vectors, np.float64)
    y = np.asarray(is_dog, np.float64)
    if not 0 < y.mean() < 1:
        raise ValueError("fitting a species head needs both dogs and cats")
    sample = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        g = (p - y) * sample
        w -= rate * (x.T @ g / sample.sum() + l2 * w)
        b -= rate * float(g.sum() / sample.sum())
    return w.astype(np.float32), float(b)


def balanced_log_loss(p_dog: np.ndarray, is_dog: np.ndarray) -> float:
    """Mean log loss with both species weighing the same, whatever their counts."""
    y = np.asarray(is_dog, np.float64)
    p = np.clip(np.asarray(p_dog, np.float64), 1e-6, 1 - 1e-6)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    return float(-(weight * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum() / weight.sum())


def fit_calibrated(train: tuple[np.ndarray, np.ndarray],
                   calibrate: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float, dict[str, float]]:
    """The head fitted on ``train`` (vectors, is_dog) with the regularisation of ``L2_CHOICES``
    whose probabilities score best (balanced log loss) on ``calibrate``; returns the weights,
    the bias and each choice's calibration loss."""
    losses = {}
    fitted = {}
    for l2 in L2_CHOICES:
        w, b = fit(*train, l2=l2)
        fitted[l2] = (w, b)
        p = 1.0 / (1.0 + np.exp(-(calibrate[0] @ w + b)))
        losses[f"{l2:g}"] = round(balanced_log_loss(p, calibrate[1]), 5)
    best = min(L2_CHOICES, key=lambda l2: losses[f"{l2:g}"])
    return *fitted[best], losses


def write_head(path: Path, weights: np.ndarray, bias: float, features_version: str,
               meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"features": features_version, "bias": round(bias, 6),
                                "weights": [round(float(v), 6) for v in weights], "meta": meta},
                               indent=None, sort_keys=True) + "\n")


def read_head(path: Path) -> dict[str, Any]:
    try:
        head = json.loads(path.read_text())
        if len(head["weights"]) != 1280:
            raise ValueError("not 1280 weights")
        return head
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path} is not a species head ({exc})") from None
