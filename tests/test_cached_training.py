"""CPU re-ID training (embeddings/cached_training.py) on the fixture's real MPDD dogs, shrunk to
one kept view and one epoch: it writes loadable weights, scores every epoch on the calibration
dogs clean and through the camera effects, and a rerun resumes instead of starting again."""

from __future__ import annotations

from pathlib import Path

from embeddings import backbone, reid_data
from embeddings.cached_training import CALIBRATION_VIEWS, train_cached
from embeddings.train import Recipe


def test_a_tiny_run_writes_weights_scored_clean_and_degraded_and_resumes(fixtures: Path, tmp_path: Path):
    mpdd = fixtures / "reid" / "mpdd"
    _, held_out = reid_data.split_identities({it.identity for it in reid_data.read_folder(mpdd)})
    calibrate = {"mpdd": set(sorted(held_out)[:2])}
    recipe = Recipe(epochs=1, ids_per_batch=4, images_per_id=2, warmup_epochs=0, train_from_block=15,
                    cached_views=1, store_size=232)
    lines: list[str] = []
    meta = train_cached([mpdd], tmp_path / "run", recipe, calibrate_ids=calibrate, eval_every=1, log=lines.append)

    assert [row["epoch"] for row in meta["history"]] == [0, 1]
    for row in meta["history"]:
        assert list(row["mpdd"]) == list(CALIBRATION_VIEWS)
        assert all(0.0 <= v["mAP"] <= 1.0 for v in row["mpdd"].values())
    assert meta["best_epoch"] in (0, 1) and meta["device"] == "cpu"
    net = backbone.load_weights(tmp_path / "run" / "reid_lite0.pt")
    assert net.neck is None  # what ships is the pooled trunk
    assert any(line.startswith("views: 1/1") for line in lines)

    again: list[str] = []
    rerun = train_cached([mpdd], tmp_path / "run", recipe, calibrate_ids=calibrate, eval_every=1, log=again.append)
    assert any(line.startswith("reusing ") and "kept views from views-" in line for line in again)
    assert any("resuming after epoch 1/1" in line for line in again)
    assert rerun["history"] == meta["history"] and rerun["best_epoch"] == meta["best_epoch"]
