"""Pet recall of ingest's detector path on real dogs in hard conditions, the whole-frame look alone
beside it followed by the second, closer look (search_party.ingest.second_look).

No real camera footage with a dog exists in the data, so each test frame is composed as
tests/clipmaker.py composes clips: a real MPDD dog crop (identities of one split of
embeddings/weights: ``calibrate`` to tune the second look, ``report`` to report it) pasted into a
real CCTV scene, a few frames of the empty scene with fresh sensor noise before it so the motion
test (search_party.motion, the code ingest runs) finds where the dog appeared.  Conditions:

- ``normal``: 720p daylight, the dog 120–240 px tall;
- ``small``: 720p, the dog 24–64 px tall (far from the camera);
- ``ir night``: 720p night infrared (embeddings.camera_effects.infrared: grey, low contrast,
  grain that differs frame to frame), the dog 48–160 px tall;
- ``1080p``: 1920×1080 daylight, the dog 36–120 px tall.

A dog is found when a pet box overlaps its pasted box with IoU ≥ 0.3; a frame with a pet box
elsewhere counts as a false pet.  Ms per frame is the mean wall time of the detector path
(the second look runs only on frames where the first found no pet, so its cost is averaged in).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from embeddings import boxes as bx
from embeddings.camera_effects import infrared
from embeddings.detector import Box, Detection, PetDetector
from embeddings.images import load_rgb
from embeddings.registry import WEIGHTS_DIR
from embeddings.reid_data import read_folder, read_ids_file
from search_party.ingest.options import IngestOptions
from search_party.ingest.second_look import second_look
from search_party.motion import MotionDetector, small_grey


@dataclass(frozen=True)
class Condition:
    name: str
    width: int
    height: int
    dog_heights: tuple[int, int]
    ir: bool = False


CONDITIONS = (
    Condition("normal", 1280, 720, (120, 240)),
    Condition("small", 1280, 720, (24, 64)),
    Condition("ir night", 1280, 720, (48, 160), ir=True),
    Condition("1080p", 1920, 1080, (36, 120)),
)
SPLITS = ("calibrate", "report")
SCENE_VIDEO = "vtest_pedestrians_15s.mp4"  # real CCTV: a pedestrian precinct seen from above
SCENE_FRAMES = (0, 300)
EMPTY_FRAMES = 3  # empty-scene frames the motion test sees before the dog
MIN_IOU = 0.3


@dataclass(frozen=True)
class RecallRow:
    condition: str
    frames: int
    found_first: int
    found_both: int
    false_first: int  # frames with a pet box away from the dog
    false_both: int
    ms_first: float
    ms_both: float
    second_looks: int  # frames where the second look ran


def dog_crops(data_dir: Path, split: str, per_dog: int, dogs: int | None = None) -> list[np.ndarray]:
    """``per_dog`` crops, spread over its images, of each MPDD dog in the ``split`` (the first
    ``dogs`` of them by identity, default all)."""
    folders = [p for p in data_dir.rglob("mpdd") if p.parent.name == "reid"]
    if not folders:
        raise FileNotFoundError(f"no reid/mpdd folder under {data_dir}")
    ids = read_ids_file(WEIGHTS_DIR / f"{split}_ids_mpdd.txt")
    items = read_folder(folders[0], ids)
    chosen = sorted({it.identity for it in items})[:dogs]
    if not chosen:
        raise FileNotFoundError(f"no MPDD dog of the {split} split under {folders[0]}")
    crops: list[np.ndarray] = []
    for identity in chosen:
        mine = sorted((it for it in items if it.identity == identity), key=lambda it: it.path.name)
        spread = mine[::max(1, len(mine) // per_dog)][:per_dog]  # poses from across its sequences
        crops.extend(load_rgb(it.path) for it in spread)
    return crops


def scenes(data_dir: Path) -> list[np.ndarray]:
    found = sorted(data_dir.rglob(SCENE_VIDEO))
    if not found:
        raise FileNotFoundError(f"{SCENE_VIDEO} not found under {data_dir}")
    frames = []
    with av.open(str(found[0])) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in SCENE_FRAMES:
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= max(SCENE_FRAMES):
                break
    return frames


def _fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = min(w / width, h / height)
    cw, ch = int(width * scale), int(height * scale)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return np.asarray(Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw]).resize((width, height), Image.Resampling.BILINEAR))


def _frames(scene: np.ndarray, crop: np.ndarray, cond: Condition, rng: np.random.Generator
            ) -> tuple[list[np.ndarray], Box]:
    """EMPTY_FRAMES empty frames and one with the dog, each with its own noise; the dog's box."""
    background = _fit(scene, cond.width, cond.height).astype(np.int16)
    dh = int(rng.integers(cond.dog_heights[0], cond.dog_heights[1] + 1))
    dw = max(1, round(crop.shape[1] * dh / crop.shape[0]))
    dog = np.asarray(Image.fromarray(crop).resize((dw, dh), Image.Resampling.LANCZOS))
    x = int(rng.integers(0, cond.width - dw + 1))
    y = int(rng.uniform(0.45, 0.95) * cond.height) - dh
    y = min(max(y, 0), cond.height - dh)
    look_seed = int(rng.integers(1 << 31))
    frames = []
    for i in range(EMPTY_FRAMES + 1):
        frame = np.clip(background + rng.normal(0, 2.0, background.shape), 0, 255).astype(np.uint8)
        if i == EMPTY_FRAMES:
            frame[y:y + dh, x:x + dw] = dog
        if cond.ir:
            frame = infrared(frame, np.random.default_rng(look_seed), grain=rng)
        frames.append(frame)
    return frames, (float(x), float(y), float(x + dw), float(y + dh))


def _found(pets: Sequence[Detection], truth: Box) -> tuple[bool, bool]:
    """(the dog was found, some pet box lies away from it)."""
    if not pets:
        return False, False
    overlaps = bx.iou(np.array(truth), np.array([p.box for p in pets]))
    return bool((overlaps >= MIN_IOU).any()), bool((overlaps < MIN_IOU).any())


def _changed(frames: Sequence[np.ndarray], motion_width: int) -> np.ndarray | None:
    motion = MotionDetector(IngestOptions().motion_threshold)
    for rgb in frames:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        motion.update(small_grey(frame, motion_width))
    return motion.last_changed


def samples(data_dir: Path, split: str, per_dog: int, dogs: int | None, cond: Condition,
            seed: int = 0) -> Iterator[tuple[list[np.ndarray], Box]]:
    """The condition's test frames: every chosen crop once, over the scenes in turn."""
    rng = np.random.default_rng([seed, CONDITIONS.index(cond)])
    backgrounds = scenes(data_dir)
    for i, crop in enumerate(dog_crops(data_dir, split, per_dog, dogs)):
        yield _frames(backgrounds[i % len(backgrounds)], crop, cond, rng)


def measure(detector: PetDetector, data_dir: Path, cond: Condition, *, split: str, per_dog: int,
            dogs: int | None, regions: int) -> RecallRow:
    options = IngestOptions()
    n = found1 = found2 = false1 = false2 = looks2 = 0
    ms1 = ms2 = 0.0
    for frames, truth in samples(data_dir, split, per_dog, dogs, cond):
        rgb = frames[-1]
        changed = _changed(frames, options.motion_width)
        start = time.perf_counter()
        pets = detector.predict(rgb)
        detector.person_boxes(rgb)  # what the pipeline pays: the same pass, its persons
        first = time.perf_counter() - start
        both = first
        closer = pets
        if not pets:
            start = time.perf_counter()
            closer, _ = second_look(detector, rgb, changed, 0, regions)
            both += time.perf_counter() - start
            looks2 += 1
        hit1, false_1 = _found(pets, truth)
        hit2, false_2 = _found(closer, truth)
        n += 1
        found1, found2 = found1 + hit1, found2 + hit2
        false1, false2 = false1 + false_1, false2 + false_2
        ms1, ms2 = ms1 + first * 1000, ms2 + both * 1000
    return RecallRow(cond.name, n, found1, found2, false1, false2, ms1 / max(n, 1), ms2 / max(n, 1),
                     looks2)


def run(detector: PetDetector, data_dir: Path, *, split: str = "report", per_dog: int = 4,
        dogs: int | None = None, regions: int | None = None) -> dict:
    """Recall per condition, first look beside first + second, as one JSON-ready dict."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    regions = IngestOptions().second_look_regions if regions is None else regions
    rows = [measure(detector, data_dir, c, split=split, per_dog=per_dog, dogs=dogs, regions=regions)
            for c in CONDITIONS]
    return {"detector": detector.name, "split": split, "per_dog": per_dog, "regions": regions,
            "rows": [asdict(r) for r in rows]}
