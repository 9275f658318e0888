"""Settings from the environment, validated once, with errors that say which variable is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search_party.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DETECTORS = ("picodet_s_416", "picodet_s_320", "yolox_nano")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    detector: str

    @property
    def cache_dir(self) -> Path:
        """Build outputs such as exported ONNX graphs (never committed)."""
        return self.data_dir / "models"


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("SEARCH_PARTY_DATA_DIR", PROJECT_ROOT / "data")).expanduser()
    detector = os.environ.get("SEARCH_PARTY_DETECTOR", "picodet_s_416")
    if detector not in DETECTORS:
        raise UserError(
            f"SEARCH_PARTY_DETECTOR={detector!r} is not a detector; choose one of {', '.join(DETECTORS)}"
        )
    return Settings(data_dir=data_dir, detector=detector)
