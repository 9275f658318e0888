"""Where model files and exported graphs are, and how many threads and which execution providers
a model may use.  The caller builds it (the domain from its settings): the vision package reads
no environment variables of its own.  Standard library only, so naming it loads no model code."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT.parent / "shared" / "models"
DEFAULT_CACHE_DIR = PROJECT_ROOT / "data" / "models"


@dataclass(frozen=True)
class Runtime:
    """Where model files and exported graphs are, and how onnxruntime runs them."""

    model_dirs: tuple[Path, ...] = (DEFAULT_MODEL_DIR,)
    cache_dir: Path = DEFAULT_CACHE_DIR  # exported graphs (build outputs, never committed)
    threads: int | None = None  # intra-op threads per model; None: every core
    providers: tuple[str, ...] = ()  # onnxruntime execution providers by name; (): choose
    allow_download: bool = False  # fetch a missing file from its pinned source (registry)
    download_dir: Path | None = None  # where fetched files go (and are looked for); None: model_dirs[0]
    mirror: str | None = None  # fetch from here (base URL + file name) instead of the pinned source

    @property
    def intra_op_threads(self) -> int:
        return max(1, self.threads or os.cpu_count() or 1)


DEFAULT_RUNTIME = Runtime()
