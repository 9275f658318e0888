"""Cheap real clips for the queue tests: one MPDD dog (real crops, tests/fixtures) walking across a
real CCTV frame (the committed pedestrian clip) for one second at 320×240.  Each clip gets
its own sensor-noise seed, so every clip has different bytes (a different content hash) while the
full pipeline still finds the same one dog in it.  Composed with tests/clipmaker.py."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from clipmaker import DogWalk, compose, fit, frame_times, mpdd_crops, video_frame, write_clip

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECONDS, FPS, SIZE = 1.0, 10, (320, 240)


@lru_cache(maxsize=1)
def _scene() -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    background = fit(video_frame(FIXTURES / "videos" / "vtest_pedestrians_15s.mp4"), *SIZE)
    crops = tuple(mpdd_crops(FIXTURES / "reid" / "mpdd", "131", sequence=5).values())
    return background, crops


def dog_clip(path: Path, seed: int = 0) -> Path:
    """A one-second clip of dog 131 crossing the scene; ``seed`` varies only the sensor noise."""
    background, crops = _scene()
    walk = DogWalk(crops=crops, enter=0.0, leave=SECONDS, height=110, y=0.95)
    times = frame_times(SECONDS, FPS)
    return write_clip(path, compose(background, [walk], times, seed=seed), fps=FPS)
