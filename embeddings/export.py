"""Export a ReidNet to ONNX: the flip-averaged, L2-normalised descriptor in one graph.

The graph takes ``pixels`` float32 (n, 3, 224, 224) in 0..255 (RGB, stretched to 224×224) and
returns ``embedding`` float32 (n, 1280), unit length.  The batch axis is dynamic.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

from embeddings.backbone import INPUT_SIZE, FlipAveraged, ReidNet

# Bump when the graph's inputs, outputs or the way it is built change: it is part of the
# cache key of every exported file and of the model-version string.
EXPORT_REVISION = 1
INPUT_NAME = "pixels"
OUTPUT_NAME = "embedding"


def export_onnx(net: ReidNet, path: Path) -> Path:
    """Write ``net`` (flip-averaged, normalised) to ``path`` atomically and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = FlipAveraged(net.eval().float())
    sample = torch.full((2, 3, INPUT_SIZE, INPUT_SIZE), 128.0)
    # Several workers may export at once: each writes its own temporary file, the last rename wins.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (sample,), tmp, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
