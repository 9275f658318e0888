"""One onnxruntime session wrapper shared by every model, so threading is set in one place."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def default_threads() -> int:
    """Intra-op threads: SEARCH_PARTY_THREADS, else every core (2 on the reference machine)."""
    env = os.environ.get("SEARCH_PARTY_THREADS")
    if env:
        return max(1, int(env))
    return max(1, os.cpu_count() or 1)


def _weights_as_constants(path: Path) -> str | bytes:
    """The graph with its weights no longer listed as inputs.

    Older exporters (Paddle's, for PicoDet) list every weight among the graph's inputs as well,
    which tells onnxruntime a caller may replace them at run time: it then folds no constants
    and fuses nothing around them.  Dropping them from the inputs changes no output (largest
    difference 1e-5) and makes PicoDet-S-416 about 28% faster on one thread here (32 → 23 ms).
    """
    model = onnx.load(str(path))
    weights = {w.name for w in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) == len(model.graph.input):
        return str(path)  # nothing to drop (the project's own exports): let onnxruntime read it
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return model.SerializeToString()


class OnnxModel:
    """A loaded ONNX graph on the CPU: ``run`` feeds named arrays and returns the outputs."""

    def __init__(self, path: Path | str, threads: int | None = None) -> None:
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning: on 2 cores a spinning pool starves the decode
        # thread that runs beside the detector (bench ingest, 720p: decode ratio 1.79-2.06 with
        # spinning, 1.46-1.76 without; one detector call alone costs about the same).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            _weights_as_constants(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = [i.shape for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)
