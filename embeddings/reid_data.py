"""Identity-labelled image folders: ``<identity>/<image>`` with an optional ``labels.csv``.

``labels.csv`` has columns ``path, identity`` and optionally ``s`` (the sequence a crop was cut
from). Without ``s`` every image counts as its own sequence.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".heic", ".heif"}


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    identity: str
    sequence: str


def read_folder(root: Path | str, ids: set[str] | None = None) -> list[LabelledImage]:
    """Every labelled image under ``root``, optionally only the identities in ``ids``."""
    root = Path(root)
    labels = root / "labels.csv"
    items: list[LabelledImage] = []
    if labels.is_file():
        with open(labels, newline="") as fh:
            for row in csv.DictReader(fh):
                path = root / row["path"]
                seq = row.get("s") or path.name
                items.append(LabelledImage(path, row["identity"], f"{row['identity']}/{seq}"))
    else:
        for path in sorted(root.glob("*/*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                items.append(LabelledImage(path, path.parent.name, f"{path.parent.name}/{path.name}"))
    if ids is not None:
        items = [it for it in items if it.identity in ids]
    return items


def split_identities(identities: list[str] | set[str], val_share: float = 0.3,
                     seed: int = 0) -> tuple[list[str], list[str]]:
    """A reproducible split by identity: (training ids, validation ids).

    Sorted, shuffled by numpy ``default_rng(seed)``; the first 70 % train, the rest validate.
    """
    ids = sorted(set(identities))
    np.random.default_rng(seed).shuffle(ids)
    n_train = int(round(len(ids) * (1.0 - val_share)))
    return sorted(ids[:n_train]), sorted(ids[n_train:])


@dataclass(frozen=True)
class ThreeWaySplit:
    """Identities for training, for calibrating thresholds, and for reporting figures: a model
    and its thresholds are scored only on dogs that took part in neither."""

    train: list[str]
    calibrate: list[str]
    report: list[str]


def three_way_split(identities: list[str] | set[str], *, report_always: Collection[str] = (),
                    seed: int = 0) -> ThreeWaySplit:
    """``split_identities``'s training ids (so models trained on that split stay comparable), its
    validation ids halved into calibrate and report by ``default_rng(seed + 1)``; ids in
    ``report_always`` (the test fixture's dogs) are moved into report, swapped one for one with
    report ids so both halves keep their size."""
    train, held_out = split_identities(identities, seed=seed)
    np.random.default_rng(seed + 1).shuffle(held_out)
    half = len(held_out) // 2
    calibrate, report = held_out[:half], held_out[half:]
    movable = [i for i in report if i not in report_always]
    for identity in [i for i in calibrate if i in report_always]:
        if not movable:
            raise ValueError("more fixed report identities than the report half can hold")
        swap = movable.pop()
        calibrate[calibrate.index(identity)] = swap
        report[report.index(swap)] = identity
    return ThreeWaySplit(sorted(train), sorted(calibrate), sorted(report))


def read_ids_file(path: Path | str) -> set[str]:
    """Identities listed one per line (blank lines and ``#`` comments ignored)."""
    lines = Path(path).read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}
