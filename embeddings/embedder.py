"""Dog crops in, L2-normalised re-ID vectors out, run in onnxruntime.

``Embedder.load()`` finds the source weights through the registry (sha256-verified), exports them
to ONNX in the runtime's cache folder the first time (torch is needed only then), and keys the
exported file by the source's sha256 so new weights or a new export never reuse a stale graph.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from embeddings import registry
from embeddings.errors import ModelError, ModelNotFound
from embeddings.inference import InferenceModel, OnnxSession
from embeddings.runtime import DEFAULT_RUNTIME, Runtime

INPUT_SIZE = 224  # the same as backbone.INPUT_SIZE; repeated so inference never imports torch
FEATURE_DIM = 1280
EXPORT_REVISION = 1  # the same as export.EXPORT_REVISION (a test checks both agree)
# How a crop becomes pixels: stretched to 224×224 by Pillow's bilinear (antialiased) resize.
PREPROCESS = f"stretch{INPUT_SIZE}-bilinear-flipavg"
BATCH = 16
# A detector's tight box cuts off ears and tails: crops are grown by this much of the box's size on
# every side, for camera sightings and owners' photos alike, so both frame a dog the same way.
CROP_MARGIN = 0.1

# Which registry file each selectable model is built from.
SOURCES = {"trained": "reid_lite0", "imagenet": "efficientnet_lite0"}


def crop_box(rgb: np.ndarray, box: tuple[float, float, float, float] | np.ndarray,
             margin: float = CROP_MARGIN) -> np.ndarray:
    """The (x1, y1, x2, y2) box of an H×W×3 image, grown by ``margin`` of its size on every
    side and clipped to the image."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(np.floor(x1 - dx))), max(0, int(np.floor(y1 - dy)))
    right, bottom = min(w, int(np.ceil(x2 + dx))), min(h, int(np.ceil(y2 + dy)))
    if right <= left or bottom <= top:
        raise ValueError(f"box {tuple(box)} lies outside the {w}×{h} image")
    return rgb[top:bottom, left:right]


def to_pixels(crops: list[np.ndarray]) -> np.ndarray:
    """RGB uint8 crops of any size -> float32 (n, 3, 224, 224) in 0..255, as the graph wants."""
    out = np.empty((len(crops), 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for i, crop in enumerate(crops):
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"crop {i} is {crop.dtype} {crop.shape}; expected H×W×3 uint8 RGB")
        img = Image.fromarray(crop).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
        out[i] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)
    return out


def _export_key(source_sha256: str) -> str:
    text = f"{source_sha256}:{PREPROCESS}:export{EXPORT_REVISION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def exported_graph(name: str, runtime: Runtime = DEFAULT_RUNTIME) -> Path:
    """Where embedder ``name``'s ONNX graph is (or will be) exported; the name carries the hash of
    the pinned source weights, so a graph made from other weights is never picked up."""
    return runtime.cache_dir / f"reid_{name}_{_export_key(registry.get(SOURCES[name]).sha256)}.onnx"


def _export(model: str, source: Path, target: Path) -> None:
    try:
        from embeddings import backbone, export
    except ImportError as exc:
        raise ModelError(
            f"{target.name} is not exported yet and exporting needs torch ({exc.name} is missing); "
            "install the project with its [train] extra, or copy an exported file into "
            f"{target.parent}"
        ) from None
    net = backbone.build_imagenet() if model == "imagenet" else backbone.load_weights(source)
    export.export_onnx(net, target)


@dataclass
class Embedder(InferenceModel):
    """One re-ID model in onnxruntime; ``version`` is stored beside every vector it makes."""

    name: str  # "trained" or "imagenet" (SOURCES)
    version: str
    onnx_path: Path
    session: OnnxSession
    dim: int = FEATURE_DIM

    @classmethod
    def load(cls, name: str = "trained", runtime: Runtime = DEFAULT_RUNTIME) -> Embedder:
        if name not in SOURCES:
            raise ModelError(f"unknown embedder {name!r}; choose one of {', '.join(SOURCES)}")
        target = exported_graph(name, runtime)
        if not target.is_file():  # only exporting reads the source weights
            try:
                source = registry.locate(SOURCES[name], runtime)
            except ModelNotFound as exc:
                raise ModelNotFound(f"{target.name} is not exported here, and exporting it needs {exc}; or "
                                    f"copy the graph a build machine exported into {target.parent}") from None
            _export(name, source, target)
        return cls(name=name, version=f"lite0-{name}-{_export_key(registry.get(SOURCES[name]).sha256)}",
                   onnx_path=target, session=OnnxSession(target, runtime.intra_op_threads, runtime.providers))

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 crops -> (n, dim) float32, unit length (the crop and its mirror averaged)."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self.session.run({"pixels": to_pixels(crops[i:i + BATCH])})[0]
                 for i in range(0, len(crops), BATCH)]
        return np.concatenate(parts).astype(np.float32, copy=False)
