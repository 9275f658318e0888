"""Settings from the environment, validated once, with errors that say which variable is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from embeddings.detector import DETECTORS
from search_party.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMBEDDERS = ("trained", "imagenet")  # the re-ID head, or frozen ImageNet features (baseline)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    detector: str
    embedder: str = "trained"
    # Storage and jobs: by default everything lives under data_dir, so a backup is one copy.
    db_file: Path | None = None  # SEARCH_PARTY_DB
    index_file: Path | None = None  # SEARCH_PARTY_INDEX
    redis_url: str | None = None
    retention_days: int = 30
    max_attempts: int = 3

    @property
    def cache_dir(self) -> Path:
        """Build outputs such as exported ONNX graphs (never committed)."""
        return self.data_dir / "models"

    @property
    def db_path(self) -> Path:
        """The SQLite database: the source of truth for cameras, clips, sightings and vectors."""
        return self.db_file or self.data_dir / "search_party.store.db"

    @property
    def index_path(self) -> Path:
        """The FAISS index: a cache of the sighting vectors, rebuilt from SQLite when needed."""
        return self.index_file or self.data_dir / "index" / "sightings.faiss"

    @property
    def queue_path(self) -> Path:
        """The huey SQLite queue, used when no Redis URL is set."""
        return self.data_dir / "queue.db"

    @property
    def spool_dir(self) -> Path:
        """Volunteered clips waiting for the worker; each is deleted once processed."""
        return self.data_dir / "spool"

    def prepare_dirs(self) -> None:
        """Create the data folders, or say clearly why they cannot be used."""
        for folder in (self.data_dir, self.spool_dir, self.db_path.parent, self.index_path.parent):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"cannot create {folder}: {exc.strerror}; set SEARCH_PARTY_DATA_DIR "
                                "to a writable folder") from None
            if not os.access(folder, os.W_OK):
                raise UserError(f"{folder} is not writable; set SEARCH_PARTY_DATA_DIR to a writable folder")


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"{name}={raw!r} must be a whole number of at least 1")
    return value


def _redis_url() -> str | None:
    url = os.environ.get("SEARCH_PARTY_REDIS_URL") or None
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise UserError(f"SEARCH_PARTY_REDIS_URL={url!r} must start with redis://, rediss:// or unix://")
    return url


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("SEARCH_PARTY_DATA_DIR", PROJECT_ROOT / "data")).expanduser()
    detector = os.environ.get("SEARCH_PARTY_DETECTOR", "picodet_s_416")
    if detector not in DETECTORS:
        raise UserError(
            f"SEARCH_PARTY_DETECTOR={detector!r} is not a detector; choose one of {', '.join(DETECTORS)}"
        )
    embedder = os.environ.get("SEARCH_PARTY_EMBEDDER", "trained")
    if embedder not in EMBEDDERS:
        raise UserError(
            f"SEARCH_PARTY_EMBEDDER={embedder!r} is not an embedder; choose one of {', '.join(EMBEDDERS)}"
        )
    db_file = os.environ.get("SEARCH_PARTY_DB")
    index_file = os.environ.get("SEARCH_PARTY_INDEX")
    return Settings(
        data_dir=data_dir,
        detector=detector,
        embedder=embedder,
        db_file=Path(db_file).expanduser() if db_file else None,
        index_file=Path(index_file).expanduser() if index_file else None,
        redis_url=_redis_url(),
        retention_days=_positive_int("SEARCH_PARTY_RETENTION_DAYS", 30),
        max_attempts=_positive_int("SEARCH_PARTY_MAX_ATTEMPTS", 3),
    )
