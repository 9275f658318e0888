"""How long the vision models take per frame and per crop, onnxruntime against torch eager.

The detectors exist only as ONNX graphs (there is no torch source for these COCO exports), so
their torch-eager twin is the same graph converted by onnx2torch; the converted network is run
behind the very same pre- and post-processing (``PetDetector``), and the bench checks that both
runtimes find the same boxes.  The embedder's torch twin is the ReidNet it was exported from.

Torch, onnx and onnx2torch are optional (the ``train`` extra): without them the torch column
says n/a and why.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embeddings.detector import DETECTORS, PetDetector
from embeddings.errors import ModelError
from embeddings.images import load_rgb
from embeddings.registry import locate
from embeddings.runtime import DEFAULT_RUNTIME, Runtime

# Real footage: CCTV with pedestrians, a handheld clip of a puppy, a dog on a porch.
FRAME_SOURCES = (
    ("vtest_pedestrians_15s.mp4", (0, 75)),
    ("dog_puppy_indoor_4s_480p.mp4", (0, 60)),
    ("zamba_dog_porch.jpg", (0,)),
)
CROP_FOLDER = ("reid", "mpdd")  # whole-body dog crops cut from street and yard video


@dataclass(frozen=True)
class BenchRow:
    component: str  # "detector" or "embedder"
    model: str
    unit: str  # "frame" or "crop"
    onnxruntime_ms: float
    torch_ms: float | None
    torch_note: str  # why torch is n/a, or how the torch twin was built and whether it agrees


def _find(data_dir: Path, name: str) -> Path:
    found = sorted(data_dir.rglob(name))
    if not found:
        raise FileNotFoundError(f"{name} not found under {data_dir}")
    return found[0]


def _video_frames(path: Path, wanted: Sequence[int]) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= max(wanted):
                break
    return frames


def load_frames(data_dir: Path) -> list[np.ndarray]:
    """Real frames from the data folder (the shared data, or the project's test fixtures)."""
    frames: list[np.ndarray] = []
    for name, wanted in FRAME_SOURCES:
        path = _find(data_dir, name)
        frames.extend(_video_frames(path, wanted) if path.suffix == ".mp4" else [load_rgb(path)])
    return frames


def load_crops(data_dir: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` MPDD dog crops, in sorted order."""
    folders = [p for p in data_dir.rglob(CROP_FOLDER[-1]) if p.parent.name == CROP_FOLDER[0]]
    if not folders:
        raise FileNotFoundError(f"no {'/'.join(CROP_FOLDER)} folder under {data_dir}")
    return [load_rgb(p) for p in sorted(folders[0].rglob("*.jpg"))[:count]]


def median_ms(fn: Callable[[np.ndarray], object], items: Sequence[np.ndarray], repeats: int) -> float:
    """Median wall time of ``fn(item)`` over every item, ``repeats`` times, after one warm-up.

    The warm-up uses the last item so that no timed call repeats the call just before it (the
    detector would answer that from its one-frame cache)."""
    fn(items[-1])
    times = []
    for _ in range(repeats):
        for item in items:
            start = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def _both_passes(det: PetDetector) -> Callable[[np.ndarray], object]:
    # What the pipeline pays per sampled frame: pets plus the person regions to blur.
    return lambda rgb: (det.predict(rgb), det.person_boxes(rgb))


class TorchGraph:
    """An ONNX detector graph converted to torch by onnx2torch, with OnnxSession's interface."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnx
        import torch
        from onnx2torch import convert

        graph = onnx.load(str(path))
        _make_convertible(graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.module = convert(graph).eval()
        torch.set_num_threads(threads)
        self._torch = torch
        self.input_names = [i.name for i in graph.graph.input]
        self.input_shapes = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._torch.inference_mode(), warnings.catch_warnings():
            # onnx2torch's Slice indexes with a list, which torch deprecates; the result is the same.
            warnings.simplefilter("ignore", UserWarning)
            out = self.module(*(self._torch.from_numpy(feeds[n]) for n in self.input_names))
        return [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]


def _make_convertible(graph) -> None:
    """Paddle's export lists weights as graph inputs and keeps conv biases in Constant nodes;
    onnx2torch wants both as initializers.  The arithmetic is unchanged."""
    import onnx

    weights = {i.name for i in graph.graph.initializer}
    real_inputs = [i for i in graph.graph.input if i.name not in weights]
    del graph.graph.input[:]
    graph.graph.input.extend(real_inputs)
    for node in [n for n in graph.graph.node if n.op_type == "Constant"]:
        if node.attribute[0].name == "value":
            tensor = onnx.helper.get_attribute_value(node.attribute[0])
            tensor.name = node.output[0]
            graph.graph.initializer.append(tensor)
            graph.graph.node.remove(node)


def _same_detections(a: PetDetector, b: PetDetector, frames: Sequence[np.ndarray]) -> bool:
    for rgb in frames:
        da, db = a.predict(rgb), b.predict(rgb)
        if [d.label for d in da] != [d.label for d in db]:
            return False
        if any(np.abs(np.subtract(x.box, y.box)).max() > 2.0 for x, y in zip(da, db)):
            return False
    return True


def bench_detector(name: str, frames: Sequence[np.ndarray], repeats: int, runtime: Runtime) -> BenchRow:
    threads = runtime.intra_op_threads
    ort_det = PetDetector.load(name, runtime, threads=threads)
    ort_ms = median_ms(_both_passes(ort_det), frames, repeats)
    try:
        torch_det = PetDetector(name, TorchGraph(locate(name, runtime), threads))
    except ImportError as exc:
        return BenchRow("detector", name, "frame", ort_ms, None,
                        f"n/a: {exc.name} is not installed (pip install -e '.[train]')")
    torch_ms = median_ms(_both_passes(torch_det), frames, repeats)
    agree = "same" if _same_detections(ort_det, torch_det, frames) else "DIFFERENT"
    return BenchRow("detector", name, "frame", ort_ms, torch_ms,
                    f"the ONNX graph converted by onnx2torch; {agree} detections as onnxruntime")


def bench_embedder(crops: Sequence[np.ndarray], repeats: int, runtime: Runtime) -> BenchRow:
    from embeddings.embedder import SOURCES, Embedder, to_pixels

    try:
        emb = Embedder.load("trained", runtime)
    except ModelError:
        # No trained weights yet: the ImageNet network has the same architecture and cost.
        emb = Embedder.load("imagenet", runtime)
    ort_ms = median_ms(lambda crop: emb.predict([crop]), crops, repeats)
    try:
        import torch

        from embeddings import backbone
    except ImportError as exc:
        return BenchRow("embedder", emb.version, "crop", ort_ms, None,
                        f"n/a: {exc.name} is not installed (pip install -e '.[train]')")
    torch.set_num_threads(runtime.intra_op_threads)
    net = (backbone.build_imagenet() if emb.name == "imagenet"
           else backbone.load_weights(locate(SOURCES[emb.name], runtime)))
    twin = backbone.FlipAveraged(net).eval()

    def torch_embed(crop: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return twin(torch.from_numpy(to_pixels([crop]))).numpy()

    torch_ms = median_ms(torch_embed, crops, repeats)
    return BenchRow("embedder", emb.version, "crop", ort_ms, torch_ms,
                    "the torch ReidNet the ONNX graph was exported from (flip-averaged, batch of 1)")


def run(data_dir: Path, repeats: int = 5, crops: int = 8, detectors: Sequence[str] = DETECTORS,
        runtime: Runtime = DEFAULT_RUNTIME) -> dict:
    """Every row of the vision bench plus what it ran on, as one JSON-ready dict."""
    threads = runtime.intra_op_threads
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure; say so
    frames = load_frames(data_dir)
    crop_images = load_crops(data_dir, crops)
    rows = [bench_detector(name, frames, repeats, runtime) for name in detectors]
    rows.append(bench_embedder(crop_images, repeats, runtime))
    return {
        "data": str(data_dir),
        "frames": len(frames),
        "frame_sizes": sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames}),
        "crops": len(crop_images),
        "repeats": repeats,
        "threads": threads,
        "cpus": os.cpu_count(),
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "rows": [asdict(r) for r in rows],
    }
