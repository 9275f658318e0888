"""How every model runs: which onnxruntime execution provider runs it, the one session wrapper,
and the one base class each model derives from, with a process-wide cache of loaded models.

- ``execution_providers`` is the one place a provider is chosen: a CUDA or OpenVINO build of
  onnxruntime is used without code changes, and an unavailable provider asked for by name is a
  clear error, never a silent fall-back.
- ``OnnxSession`` is the one onnxruntime session wrapper; ``InferenceModel`` is the base of the
  detector, the embedder and the species classifier (``load``, ``predict``, ``cached``).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from embeddings.errors import ModelError
from embeddings.runtime import DEFAULT_RUNTIME, Runtime

# Tried in this order when none is asked for by name; onnxruntime builds list what they have.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "OpenVINOExecutionProvider", "CoreMLExecutionProvider",
                       "CPUExecutionProvider")

def execution_providers(requested: Sequence[str] = ()) -> list[str]:
    """The providers a session is opened with: those asked for (each must be available), else
    the best this onnxruntime build has, always ending with the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(f"execution provider {', '.join(missing)} is not in this onnxruntime build "
                             f"(it has {', '.join(available)}); install the matching onnxruntime package "
                             "or choose one of those")
        chosen = list(requested)
    else:
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    return chosen if "CPUExecutionProvider" in chosen else [*chosen, "CPUExecutionProvider"]


def _weights_as_constants(path: Path) -> str | bytes:
    """The graph with its weights no longer listed as inputs.

    Older exporters (Paddle's, for PicoDet) list every weight among the graph's inputs as well,
    which tells onnxruntime a caller may replace them at run time: it then folds no constants
    and fuses nothing around them.  Dropping them from the inputs changes no output (largest
    difference 1e-5) and makes PicoDet-S-416 about 28% faster on one thread here (32 → 23 ms).
    """
    import onnx

    model = onnx.load(str(path))
    weights = {w.name for w in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) == len(model.graph.input):
        return str(path)  # nothing to drop (the project's own exports): let onnxruntime read it
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return model.SerializeToString()


class OnnxSession:
    """A loaded ONNX graph: ``run`` feeds named arrays and returns the outputs."""

    def __init__(self, path: Path | str, threads: int, providers: Sequence[str] = ()) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning: on 2 cores a spinning pool starves the decode
        # thread that runs beside the detector (bench ingest, 720p: decode ratio 1.79-2.06 with
        # spinning, 1.46-1.76 without; one detector call alone costs about the same).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(_weights_as_constants(self.path), sess_options=options,
                                            providers=execution_providers(providers))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = [i.shape for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)


_cache: dict[tuple, InferenceModel] = {}
_cache_lock = threading.RLock()  # re-entrant: one model may load another (the species head, its features)


class InferenceModel(ABC):
    """One model behind one small class: ``load`` locates and verifies its files through the
    registry and opens them in onnxruntime; ``predict`` runs it on what a caller has (frames,
    crops, vectors); ``cached`` gives every caller in the process the same loaded instance
    (onnxruntime sessions are safe to run from several threads)."""

    name: str

    @classmethod
    @abstractmethod
    def load(cls, *args: Any, **kwargs: Any) -> Self:
        """Locate, verify and open a model: ``load(name, runtime, **options)``."""

    @abstractmethod
    def predict(self, inputs: Any) -> Any:
        """Run the model."""

    @classmethod
    def cached(cls, name: str, runtime: Runtime = DEFAULT_RUNTIME, **options: Any) -> Self:
        """The model as ``load`` makes it, loaded once per process for these arguments."""
        key = (cls, name, runtime, tuple(sorted(options.items())))
        with _cache_lock:
            if key not in _cache:
                _cache[key] = cls.load(name, runtime, **options)
            model = _cache[key]
        assert isinstance(model, cls)
        return model
