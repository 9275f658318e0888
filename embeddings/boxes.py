"""Axis-aligned boxes as (x1, y1, x2, y2) rows of a float array: IoU, NMS, clipping, padding."""

from __future__ import annotations

import numpy as np


def area(boxes: np.ndarray) -> np.ndarray:
    """Area of each (N, 4) box; inverted boxes count as empty."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with each of (N, 4) boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = area(box[None])[0] + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[iou(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes limited to the image [0, width] × [0, height]."""
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def pad(boxes: np.ndarray, fraction: float, width: int, height: int) -> np.ndarray:
    """Boxes grown by ``fraction`` of their own width/height on every side, then clipped."""
    w = (boxes[:, 2] - boxes[:, 0]) * fraction
    h = (boxes[:, 3] - boxes[:, 1]) * fraction
    grown = boxes + np.stack([-w, -h, w, h], axis=1)
    return clip(grown, width, height)
