"""The pet-only detector: COCO ONNX graphs whose output is cut down to dogs and cats.

``PetDetector.predict`` returns dog and cat boxes only, merged by one class-agnostic NMS (YOLOX
once put a "cat" box on a dog).  Person boxes are decoded from the same forward pass but leave
this module only through ``person_boxes``, whose one use is blurring those pixels
(``embeddings.redact``); they are never mixed with pet detections.

Each graph is fed exactly as it was trained (see ../shared/models/MODELS.md):
- PicoDet-S: RGB stretched to the square input, ImageNet mean/std; per stride 8/16/32/64 class
  scores (already sigmoid) and GFL box distributions (4 sides × 8 bins).
- YOLOX-Nano: BGR 0–255, letterboxed at the top-left with pad 114; raw grid offsets, score =
  objectness × class probability.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from PIL import Image

from embeddings import boxes as bx
from embeddings import registry
from embeddings.errors import ModelError
from embeddings.inference import InferenceModel, OnnxSession
from embeddings.runtime import DEFAULT_RUNTIME, Runtime

Box = tuple[float, float, float, float]

# COCO class ids (0-based, coco.names): the only three this project ever reads.
PERSON, CAT, DOG = 0, 15, 16
_WANTED = np.array([PERSON, CAT, DOG])
_PET_LABELS = ("cat", "dog")  # columns 1 and 2 of the cut-down score matrix


class Graph(Protocol):
    """What the detector needs from a loaded graph (OnnxSession; a torch twin in the bench)."""

    input_names: list[str]
    input_shapes: list

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Detection:
    """One dog or cat: label ('dog' or 'cat'), score in [0, 1], box (x1, y1, x2, y2) in pixels."""

    label: str
    score: float
    box: Box


@dataclass(frozen=True)
class _Decoded:
    """Candidate boxes in image pixels with their person/cat/dog scores, before thresholds."""

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N, 3) float32: person, cat, dog


@dataclass(frozen=True)
class Shrunk:
    """A frame already shrunk to the graph's input (``PetDetector.input_size``), with the size
    it came from; boxes found in it are given in pixels of that original size.  Video ingest
    shrinks frames in its decoding thread, so the detector's thread only runs the graph."""

    rgb: np.ndarray  # h×w×3 uint8
    width: int
    height: int


@dataclass(frozen=True)
class _FrameResult:
    pets: tuple[Detection, ...]
    persons: tuple[Box, ...]


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    # reducing_gap: a box-filter pre-reduction makes large frames ~2× cheaper, still antialiased.
    img = Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR, reducing_gap=1.0)
    return np.asarray(img)


class _PicoDet:
    """PicoDet-S: stretch resize, ImageNet normalisation, GFL distribution decode."""

    default_conf: ClassVar[float] = 0.4
    strides: ClassVar[tuple[int, ...]] = (8, 16, 32, 64)
    bins: ClassVar[int] = 8
    _mean = np.array([123.675, 116.28, 103.53], np.float32)
    _std = np.array([58.395, 57.12, 57.375], np.float32)

    def __init__(self, model: Graph) -> None:
        self.model = model
        self.input_name = model.input_names[0]
        self.size = int(model.input_shapes[0][-1])
        centres, strides = [], []
        for s in self.strides:
            n = math.ceil(self.size / s)
            ys, xs = np.mgrid[0:n, 0:n]
            # Anchor centre of cell i is i·s + (s−1)/2, as in the graph's training code.
            centres.append(np.stack([xs.ravel(), ys.ravel()], 1) * s + (s - 1) / 2)
            strides.append(np.full(n * n, s))
        self.centres = np.concatenate(centres).astype(np.float32)
        self.anchor_strides = np.concatenate(strides).astype(np.float32)
        self._scale = (1.0 / self._std).astype(np.float32)[:, None, None]
        self._offset = (-self._mean / self._std).astype(np.float32)[:, None, None]
        self._project = np.arange(self.bins, dtype=np.float32)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        return self.size, self.size  # stretched, as trained

    def run(self, small: np.ndarray, width: int, height: int, min_score: float) -> _Decoded:
        x = np.empty((1, 3, self.size, self.size), np.float32)
        np.multiply(small.transpose(2, 0, 1), self._scale, out=x[0])
        x[0] += self._offset
        outs = self.model.run({self.input_name: x})
        n_levels = len(self.strides)
        scores = np.concatenate([o[0] for o in outs[:n_levels]])[:, _WANTED]
        keep = np.flatnonzero(scores.max(1) >= min_score)
        dist = np.concatenate([o[0] for o in outs[n_levels:]])[keep].reshape(-1, 4, self.bins)
        # GFL: softmax over the bins, expected bin × stride = distance to each side (l, t, r, b).
        e = np.exp(dist - dist.max(-1, keepdims=True))
        d = (e / e.sum(-1, keepdims=True)) @ self._project * self.anchor_strides[keep, None]
        c = self.centres[keep]
        boxes = np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1)
        boxes *= np.array([width, height, width, height], np.float32) / self.size
        return _Decoded(boxes, scores[keep])


class _Yolox:
    """YOLOX-Nano: BGR 0–255 top-left letterbox, grid decode, objectness × class."""

    default_conf: ClassVar[float] = 0.25
    strides: ClassVar[tuple[int, ...]] = (8, 16, 32)
    pad_value: ClassVar[int] = 114

    def __init__(self, model: Graph) -> None:
        self.model = model
        self.input_name = model.input_names[0]
        self.size = int(model.input_shapes[0][-1])
        grids, strides = [], []
        for s in self.strides:
            n = self.size // s
            ys, xs = np.mgrid[0:n, 0:n]
            grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
            strides.append(np.full(n * n, s))
        self.grid = np.concatenate(grids).astype(np.float32)
        self.anchor_strides = np.concatenate(strides).astype(np.float32)[:, None]

    def _ratio(self, width: int, height: int) -> float:
        return min(self.size / height, self.size / width)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        r = self._ratio(width, height)
        return max(1, int(width * r)), max(1, int(height * r))

    def run(self, small: np.ndarray, width: int, height: int, min_score: float) -> _Decoded:
        nh, nw = small.shape[:2]
        x = np.full((1, 3, self.size, self.size), self.pad_value, np.float32)
        x[0, :, :nh, :nw] = small.transpose(2, 0, 1)[::-1]  # RGB -> BGR planes
        out = self.model.run({self.input_name: x})[0][0]
        scores = out[:, 4:5] * out[:, 5 + _WANTED]
        keep = np.flatnonzero(scores.max(1) >= min_score)
        raw = out[keep]
        stride = self.anchor_strides[keep]
        xy = (raw[:, :2] + self.grid[keep]) * stride
        half = np.exp(raw[:, 2:4]) * stride / 2
        boxes = np.concatenate([xy - half, xy + half], axis=1) / self._ratio(width, height)
        return _Decoded(boxes, scores[keep])


_GRAPHS: dict[str, type[_PicoDet] | type[_Yolox]] = {
    "picodet_s_416": _PicoDet,
    "picodet_s_320": _PicoDet,
    "yolox_nano": _Yolox,
}
DETECTORS = registry.DETECTORS
assert set(_GRAPHS) == set(DETECTORS), "every registered detector needs a decoder here"
DEFAULT_DETECTOR = "picodet_s_416"


def _graph_kind(name: str) -> type[_PicoDet] | type[_Yolox]:
    if name not in _GRAPHS:
        raise ModelError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return _GRAPHS[name]


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")


def _frame_key(rgb: np.ndarray) -> tuple:
    # Keyed by content, not identity: decoders reuse buffers for new frames, and callers may
    # pass two array objects holding the same frame.  crc32 costs ~1.5 ms on a 1080p frame.
    return rgb.shape, zlib.crc32(np.ascontiguousarray(rgb).data)


class PetDetector(InferenceModel):
    """Dogs and cats in an RGB frame; person regions only for blurring them."""

    def __init__(
        self,
        name: str,
        model: Graph,
        conf: float | None = None,
        person_conf: float | None = None,
        iou_threshold: float = 0.5,
    ) -> None:
        self.name = name
        self._graph = _graph_kind(name)(model)
        self.conf = self._graph.default_conf if conf is None else conf
        # Redaction errs on the side of blurring: a missed person is worse than a blurred bush.
        self.person_conf = min(self.conf, 0.3) if person_conf is None else person_conf
        self.iou_threshold = iou_threshold
        self._last: tuple[tuple, _FrameResult] | None = None

    @classmethod
    def load(
        cls,
        name: str = DEFAULT_DETECTOR,
        runtime: Runtime = DEFAULT_RUNTIME,
        *,
        conf: float | None = None,
        person_conf: float | None = None,
        iou_threshold: float = 0.5,
        threads: int | None = None,
    ) -> PetDetector:
        """Locate and verify the named graph (embeddings.registry), then open it in onnxruntime
        with ``threads`` (default: the runtime's)."""
        _graph_kind(name)  # refuse a non-detector before touching the model folder
        session = OnnxSession(registry.locate(name, runtime), threads or runtime.intra_op_threads,
                              runtime.providers)
        return cls(name, session, conf, person_conf, iou_threshold)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) a frame of this size is shrunk to before the graph sees it."""
        return self._graph.input_size(width, height)

    def predict(self, image: np.ndarray | Shrunk) -> list[Detection]:
        """Dog and cat boxes in an H×W×3 uint8 RGB image (or one already shrunk), best first."""
        return list(self._analyse(image).pets)

    def person_boxes(self, image: np.ndarray | Shrunk) -> list[Box]:
        """Person regions, for blurring only: never crop, embed or compare these pixels."""
        return list(self._analyse(image).persons)

    def shrink(self, rgb: np.ndarray) -> Shrunk:
        """The frame resized to the graph's input, as predict() does it for a full frame."""
        _check_rgb(rgb)
        return self._shrink(rgb)

    def _shrink(self, rgb: np.ndarray) -> Shrunk:
        h, w = rgb.shape[:2]
        return Shrunk(_resize(rgb, *self.input_size(w, h)), w, h)

    def _analyse(self, image: np.ndarray | Shrunk) -> _FrameResult:
        """One forward pass per frame: predict() and person_boxes() on the same frame share it,
        found again by the frame's content before any resizing."""
        if isinstance(image, Shrunk):
            shrunk: Shrunk | None = image
            _check_rgb(image.rgb)
            wanted = self.input_size(image.width, image.height)
            if image.rgb.shape[1::-1] != wanted:
                raise ValueError(f"a {image.width}×{image.height} frame must be shrunk to "
                                 f"{wanted}, not {image.rgb.shape[1::-1]}")
            key: tuple = (image.width, image.height, _frame_key(image.rgb))
        else:
            shrunk = None
            _check_rgb(image)
            key = _frame_key(image)
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        if shrunk is None:
            assert not isinstance(image, Shrunk)
            shrunk = self._shrink(image)  # checked above
        w, h = shrunk.width, shrunk.height
        decoded = self._graph.run(shrunk.rgb, w, h, min(self.conf, self.person_conf))
        boxes = bx.clip(decoded.boxes, w, h)
        visible = bx.area(boxes) > 0  # a box wholly outside the frame clips to nothing
        boxes, scores = boxes[visible], decoded.scores[visible]
        result = _FrameResult(self._pets(boxes, scores), self._persons(boxes, scores))
        self._last = (key, result)
        return result

    def _pets(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[Detection, ...]:
        pet_scores = scores[:, 1:]
        # One candidate per (anchor, class) above threshold; then NMS across both classes.
        rows, cols = np.nonzero(pet_scores >= self.conf)
        cand_boxes, cand_scores = boxes[rows], pet_scores[rows, cols]
        kept = bx.nms(cand_boxes, cand_scores, self.iou_threshold)
        return tuple(
            Detection(_PET_LABELS[cols[i]], float(cand_scores[i]), _as_box(cand_boxes[i])) for i in kept
        )

    def _persons(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[Box, ...]:
        mask = scores[:, 0] >= self.person_conf
        kept = bx.nms(boxes[mask], scores[mask, 0], self.iou_threshold)
        return tuple(_as_box(boxes[mask][i]) for i in kept)


def _as_box(row: np.ndarray) -> Box:
    x1, y1, x2, y2 = (float(v) for v in row)
    return (x1, y1, x2, y2)
