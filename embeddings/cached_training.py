"""Re-ID training that fits two CPU cores: the frozen early blocks run once per augmented view.

On a GPU, ``train.train`` augments every batch afresh and runs the whole network.  On a CPU that
costs hours per epoch, so this path splits the work:

1. **Views, once.**  Each training image is augmented ``cached_views`` times (random resized
   crop, flip, colour jitter from ``train.augment``, then the camera effects of
   ``camera_effects``: infrared, low resolution, motion blur, compression, an overhead lens) and
   pushed through the frozen stem and blocks ``< train_from_block``; their activations are kept
   (float16, about 31 kB a view at block 8) in one file beside the checkpoint, so a restart
   reuses them.
2. **Training, many times.**  PK batches draw a random kept view of each chosen image and train
   the later blocks, the head and a CosFace classifier on them (batch-hard triplet on the pooled
   features as in ``train``).  The flip-averaged descriptor of the calibration dogs is scored
   every ``eval_every`` epochs, clean and through camera effects (``CALIBRATION_VIEWS``); the
   model with the best mean mAP there is the one written.

Resumable: a checkpoint after every epoch (weights, optimiser, sampler and torch random state,
history); running the same command again continues where it stopped.  Progress lines give
steps per second and the time left.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from embeddings import backbone, camera_effects, reid_data
from embeddings.embedder import to_pixels
from embeddings.evaluate import embed_images, score
from embeddings.train import WEIGHTS_NAME, PKSampler, Recipe, _classifier, _load_stored, augment, batch_hard_triplet

CHECKPOINT = "checkpoint.pt"
# What an epoch is scored on: the calibration dogs' clean photos as queries against their own
# images clean and through the camera effects that hurt re-ID most (``eval reid --degrade``).
# Clean alone picked the starting weights of a run whose later epochs were far better at night.
CALIBRATION_VIEWS = ("clean", "ir", "lowres", "blur")


@dataclass
class CameraShares:
    """How often each camera effect is drawn for a view (see ``camera_effects``)."""

    ir: float = 0.2
    lowres: float = 0.25
    blur: float = 0.15
    jpeg: float = 0.25
    overhead: float = 0.1


@dataclass
class _Data:
    train: list[reid_data.LabelledImage]
    domains: np.ndarray
    labels: np.ndarray
    sequences: np.ndarray
    calibrate: dict[str, list[reid_data.LabelledImage]]


def _gather(data_dirs: list[Path], calibrate_ids: dict[str, set[str]]) -> _Data:
    """Training images are the training split's; calibration images the given ids'."""
    train, domains, calibrate = [], [], {}
    for d, root in enumerate(data_dirs):
        items = reid_data.read_folder(root)
        train_ids, _ = reid_data.split_identities({it.identity for it in items})
        keep = set(train_ids)
        mine = [it for it in items if it.identity in keep]
        train += mine
        domains += [d] * len(mine)
        calibrate[root.name] = [it for it in items if it.identity in calibrate_ids.get(root.name, set())]
    keys = sorted({(d, it.identity) for d, it in zip(domains, train)})
    label_of = {k: i for i, k in enumerate(keys)}
    seq_of = {s: i for i, s in enumerate(sorted({it.sequence for it in train}))}
    return _Data(train, np.asarray(domains),
                 np.array([label_of[(d, it.identity)] for d, it in zip(domains, train)]),
                 np.array([seq_of[it.sequence] for it in train]), calibrate)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@torch.no_grad()
def _frozen_views(net: backbone.ReidNet, stored: np.ndarray, recipe: Recipe, shares: CameraShares,
                  rng: np.random.Generator, log: Callable[[str], None], batch: int = 32) -> torch.Tensor:
    """(images × views, C, h, w) float16 activations entering ``recipe.train_from_block``."""
    net.eval()
    views = recipe.cached_views
    geometric = Recipe(**{**asdict(recipe), "lowres": 0.0, "erase": 0.0})  # lowres is a camera effect here
    effects = asdict(shares)
    out: torch.Tensor | None = None
    started = time.time()
    n = len(stored)
    for v in range(views):
        for start in range(0, n, batch):
            x = augment(torch.from_numpy(stored[start:start + batch]), geometric)
            rgb = x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
            crops = [camera_effects.random_effects(img, rng, effects) for img in rgb]
            feats = net.features_before(torch.from_numpy(to_pixels(crops)), recipe.train_from_block)
            if out is None:
                out = torch.empty((n * views, *feats.shape[1:]), dtype=torch.float16)
            out[v * n + start:v * n + start + len(crops)] = feats.half()
        done = (v + 1) / views
        log(f"views: {v + 1}/{views} of {n} images, {time.time() - started:.0f} s, "
            f"about {(time.time() - started) * (1 - done) / done:.0f} s left")
    assert out is not None
    return out


@torch.no_grad()
def _descriptors(net: backbone.ReidNet, items: list[reid_data.LabelledImage], degrade: str | None = None) -> np.ndarray:
    """Flip-averaged unit descriptors, as the exported graph makes them, of the images or of their
    seeded degraded copies (the same ones ``eval reid --degrade`` scores)."""
    net.eval()
    model = backbone.FlipAveraged(net)

    def embed(crops: list[np.ndarray]) -> np.ndarray:
        return F.normalize(model(torch.from_numpy(to_pixels(crops))), dim=1).numpy()

    return embed_images(embed, items, degrade=degrade)


def train_cached(data_dirs: list[Path], out_dir: Path, recipe: Recipe, *,
                 calibrate_ids: dict[str, set[str]], shares: CameraShares | None = None,
                 init: Path | None = None, eval_every: int = 2,
                 log: Callable[[str], None] = print) -> dict:
    """Train as the module docstring says; returns the metadata stored with the weights."""
    shares = shares or CameraShares()
    if recipe.train_from_block < 1 or recipe.cached_views < 1:
        raise ValueError("cached training needs train_from_block >= 1 and cached_views >= 1")
    started = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(recipe.seed)
    data = _gather(data_dirs, calibrate_ids)
    init_sha = hashlib.sha256(init.read_bytes()).hexdigest() if init else "imagenet"
    net = backbone.load_weights(init) if init else backbone.build_trainable(recipe.pooling, recipe.neck)
    if init and recipe.neck and net.neck is None:
        net.neck = torch.nn.BatchNorm1d(backbone.FEATURE_DIM)
        net.neck.bias.requires_grad_(False)
    frozen = [net.trunk._conv_stem, net.trunk._bn0, *net.trunk._blocks[:recipe.train_from_block]]
    for module in frozen:
        module.requires_grad_(False)

    key = _fingerprint([str(it.path) for it in data.train], asdict(recipe), asdict(shares), init_sha)
    views_file = out_dir / f"views-{key}.pt"
    if views_file.is_file():
        views = torch.load(views_file, weights_only=True)
        log(f"reusing {len(views)} kept views from {views_file.name}")
    else:
        stored = _load_stored([it.path for it in data.train], recipe.store_size)
        views = _frozen_views(net, stored, recipe, shares, np.random.default_rng(recipe.seed), log)
        torch.save(views, views_file)
    n_images = len(data.train)

    head = _classifier(recipe.classifier, int(data.labels.max()) + 1)
    params = [p for p in net.parameters() if p.requires_grad] + (list(head.parameters()) if head else [])
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    rng = np.random.default_rng(recipe.seed)
    sampler = PKSampler(data.labels, data.sequences, data.domains, recipe, rng)
    batch = recipe.ids_per_batch * recipe.images_per_id
    steps_per_epoch = max(1, math.ceil(n_images / batch))
    total = recipe.epochs * steps_per_epoch
    warmup = recipe.warmup_epochs * steps_per_epoch
    history: list[dict] = []
    epoch, best = 0, None

    checkpoint = out_dir / CHECKPOINT
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["key"] != key:
            raise ValueError(f"{checkpoint} belongs to another recipe or data; use another --out")
        net.load_state_dict(state["net"])
        if head is not None:
            head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        epoch, history, best = state["epoch"], state["history"], state["best"]
        log(f"resuming after epoch {epoch}/{recipe.epochs}")

    def validate() -> dict:
        row: dict = {"epoch": epoch}
        maps = []
        for name, items in data.calibrate.items():
            if items:
                ids, seqs = [it.identity for it in items], [it.sequence for it in items]
                clean = _descriptors(net, items)
                row[name] = {}
                for view in CALIBRATION_VIEWS:
                    gallery = None if view == "clean" else _descriptors(net, items, degrade=view)
                    r = score(clean, ids, seqs, gallery=gallery)
                    row[name][view] = {"rank1": round(r.rank1, 4), "mAP": round(r.mAP, 4)}
                    maps.append(r.mAP)
        row["mean_mAP"] = round(float(np.mean(maps)), 4)
        log(json.dumps(row))
        return row

    if epoch == 0 and not history:
        history.append(validate())
        best = {"epoch": 0, "mean_mAP": history[-1]["mean_mAP"],
                "state": {k: v.clone() for k, v in net.state_dict().items()}}
    labels = torch.from_numpy(data.labels)
    tick = time.time()
    while epoch < recipe.epochs:
        net.train()
        if recipe.freeze_bn:
            for module in net.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        for s in range(steps_per_epoch):
            step = epoch * steps_per_epoch + s
            lr_scale = ((step + 1) / warmup if step < warmup else
                        0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))
            for group in opt.param_groups:
                group["lr"] = recipe.lr * lr_scale
            idx = sampler.batch()
            which = rng.integers(0, recipe.cached_views, len(idx)) * n_images + idx
            x = views[torch.from_numpy(which)].float()
            y = labels[torch.from_numpy(idx)]
            pooled = net.pooled_from(x, recipe.train_from_block)
            loss = batch_hard_triplet(pooled, y, recipe.triplet_margin)
            if head is not None:
                neck = net.neck(pooled) if net.neck is not None else pooled
                loss = loss + head(neck, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if (step + 1) % 20 == 0:
                rate = 20 / (time.time() - tick)
                tick = time.time()
                log(f"epoch {epoch + 1}/{recipe.epochs} step {s + 1}/{steps_per_epoch} loss {loss.item():.3f} "
                    f"{rate:.2f} steps/s, about {(total - step - 1) / rate / 60:.0f} min left")
        epoch += 1
        if epoch % eval_every == 0 or epoch == recipe.epochs:
            row = validate()
            history.append(row)
            if best is None or row["mean_mAP"] > best["mean_mAP"]:
                best = {"epoch": epoch, "mean_mAP": row["mean_mAP"],
                        "state": {k: v.clone() for k, v in net.state_dict().items()}}
        torch.save({"key": key, "epoch": epoch, "net": net.state_dict(),
                    "head": head.state_dict() if head is not None else None, "opt": opt.state_dict(),
                    "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "history": history, "best": best}, checkpoint)

    assert best is not None
    net.load_state_dict(best["state"])
    meta = {"recipe": asdict(recipe), "camera_effects": asdict(shares), "init": init_sha,
            "data": [d.name for d in data_dirs], "train_images": n_images,
            "train_dogs": int(data.labels.max()) + 1, "history": history, "best_epoch": best["epoch"],
            "seconds": round(time.time() - started), "device": "cpu"}
    net.neck, net.config["neck"] = None, False  # what is shipped: the pooled trunk, no neck
    backbone.save_weights(net, out_dir / WEIGHTS_NAME, meta)
    log(f"wrote {out_dir / WEIGHTS_NAME} (best calibration epoch {best['epoch']}) after {meta['seconds']} s")
    return meta
