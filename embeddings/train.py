"""Fine-tune EfficientNet-Lite0 to tell individual dogs apart.

Each data folder (``<identity>/<image>`` + optional labels.csv) is split by identity with
``reid_data.split_identities`` (70/30, numpy default_rng(0)); only the training dogs are trained
on and the validation dogs are written to ``val_ids_<folder>.txt`` so that
``search-party eval reid DIR --ids FILE`` scores the same split.

Recipe (the "bag of tricks" of person re-ID, adapted): PK batches (P dogs × K images, the K drawn
from as many sequences as the dog has, one data set per batch), augmentation on the GPU (random
resized crop, flip, small rotation, colour jitter, low-resolution simulation, random erasing),
BNNeck, batch-hard triplet loss on the pooled features plus a cosine-margin (CosFace) or
label-smoothed softmax classifier on the neck features, AdamW with warm-up and cosine decay.
All images are decoded once and kept on the device as uint8.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from embeddings import backbone, reid_data
from embeddings.embedder import to_pixels
from embeddings.evaluate import score
from embeddings.images import load_rgb

WEIGHTS_NAME = "reid_lite0.pt"


@dataclass
class Recipe:
    epochs: int = 80
    ids_per_batch: int = 32  # P
    images_per_id: int = 4  # K
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 5
    classifier: str = "cosface"  # "cosface", "softmax" or "none"
    triplet_margin: float = 0.3  # on unit-length features
    pooling: str = "avg"  # "avg" or "gem"
    neck: bool = True
    domain_power: float = 0.5  # a batch comes from data set d with probability ∝ images_d ** power
    store_size: int = 256  # images are kept at this size, then randomly cropped to 224
    min_area: float = 0.5  # random resized crop keeps at least this share of the image
    rotate_deg: float = 8.0
    color: float = 0.25
    lowres: float = 0.25  # share of images shrunk to 24-96 px and blown up again (far-away dogs)
    erase: float = 0.5
    freeze_bn: bool = True  # keep the ImageNet BN statistics (batches come from one data set)
    train_from_block: int = 0  # the stem and blocks before this one stay frozen
    cached_views: int = 0  # CPU training (cached_training): augmented views kept per image
    seed: int = 0


class PKSampler:
    """Batches of P identities × K images from one data set, K spread over the dog's sequences."""

    def __init__(self, labels: np.ndarray, sequences: np.ndarray, domains: np.ndarray,
                 recipe: Recipe, rng: np.random.Generator) -> None:
        self.rng, self.p, self.k = rng, recipe.ids_per_batch, recipe.images_per_id
        self.by_domain: list[list[list[np.ndarray]]] = []  # domain -> identity -> sequences
        sizes = []
        for d in range(int(domains.max()) + 1):
            ids = []
            for label in np.unique(labels[domains == d]):
                idx = np.flatnonzero(labels == label)
                ids.append([idx[sequences[idx] == s] for s in np.unique(sequences[idx])])
            self.by_domain.append(ids)
            sizes.append((domains == d).sum())
        weights = np.asarray(sizes, dtype=np.float64) ** recipe.domain_power
        self.domain_p = weights / weights.sum()

    def batch(self) -> np.ndarray:
        ids = self.by_domain[self.rng.choice(len(self.by_domain), p=self.domain_p)]
        chosen = self.rng.choice(len(ids), size=min(self.p, len(ids)), replace=False)
        out: list[int] = []
        for i in chosen:
            seqs = [ids[i][j] for j in self.rng.permutation(len(ids[i]))]
            out.extend(self.rng.choice(seqs[j % len(seqs)]) for j in range(self.k))
        return np.asarray(out)


def _load_stored(paths: list[Path], size: int) -> np.ndarray:
    def one(path: Path) -> np.ndarray:
        img = Image.fromarray(load_rgb(path)).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(img).transpose(2, 0, 1)

    with ThreadPoolExecutor(8) as pool:
        return np.stack(list(pool.map(one, paths)))


def _load_val(paths: list[Path]) -> np.ndarray:
    """Validation pixels exactly as the Embedder makes them (uint8 is exact: Pillow rounds)."""
    with ThreadPoolExecutor(8) as pool:
        crops = list(pool.map(load_rgb, paths))
    return to_pixels(crops).astype(np.uint8)


def augment(x: torch.Tensor, recipe: Recipe, out: int = backbone.INPUT_SIZE) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> float (B, 3, out, out) in 0..255, randomly transformed per image."""
    b, dev = x.shape[0], x.device
    x = x.float()
    u = lambda *shape: torch.rand(*shape, device=dev)  # noqa: E731 - a local shorthand
    area = recipe.min_area + (1 - recipe.min_area) * u(b)
    ratio = torch.exp((u(b) - 0.5) * 2 * math.log(4 / 3))
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    tx, ty = (1 - sx) * (2 * u(b) - 1), (1 - sy) * (2 * u(b) - 1)
    angle = (2 * u(b) - 1) * math.radians(recipe.rotate_deg)
    flip = torch.where(u(b) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([sx * cos * flip, -sy * sin, tx], 1),
                         torch.stack([sx * sin * flip, sy * cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [b, 3, out, out], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if recipe.lowres > 0:
        small = u(b) < recipe.lowres
        if small.any():
            side = int(torch.randint(24, 97, (1,)))
            shrunk = F.interpolate(x[small], size=(side, side), mode="bilinear", antialias=True)
            x[small] = F.interpolate(shrunk, size=(out, out), mode="bilinear")
    if recipe.color > 0:
        c = recipe.color
        gray = x.mean(1, keepdim=True)
        x = gray + (x - gray) * (1 + c * (2 * u(b, 1, 1, 1) - 1))  # saturation
        mean = x.mean((1, 2, 3), keepdim=True)
        x = mean + (x - mean) * (1 + c * (2 * u(b, 1, 1, 1) - 1))  # contrast
        x = x * (1 + c * (2 * u(b, 1, 1, 1) - 1))  # brightness
        x = x.clamp(0, 255)
    if recipe.erase > 0:
        area = 0.02 + 0.23 * u(b)
        aspect = torch.exp((2 * u(b) - 1) * math.log(3.3))
        h = (torch.sqrt(area * aspect) * out).clamp(max=out)
        w = (torch.sqrt(area / aspect) * out).clamp(max=out)
        y0, x0 = u(b) * (out - h), u(b) * (out - w)
        yy = torch.arange(out, device=dev).view(1, out, 1)
        xx = torch.arange(out, device=dev).view(1, 1, out)
        box = ((yy >= y0.view(b, 1, 1)) & (yy < (y0 + h).view(b, 1, 1))
               & (xx >= x0.view(b, 1, 1)) & (xx < (x0 + w).view(b, 1, 1))
               & (u(b) < recipe.erase).view(b, 1, 1))
        x = torch.where(box.unsqueeze(1), 255 * u(b, 3, out, out), x)
    return x


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Hardest positive and hardest negative per anchor, on unit-length features."""
    f = F.normalize(features.float(), dim=1)
    dist = (2 - 2 * f @ f.T).clamp(min=1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    hardest_pos = (dist * same).max(1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


class CosFaceHead(nn.Module):
    """Large-margin cosine classifier: logits s·(cos θ − m) for the true class, s·cos θ otherwise."""

    def __init__(self, dim: int, classes: int, scale: float = 30.0, margin: float = 0.35) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(x.float(), dim=1) @ F.normalize(self.weight, dim=1).T
        cos = cos - self.margin * F.one_hot(labels, cos.shape[1])
        return F.cross_entropy(self.scale * cos, labels)


class SoftmaxHead(nn.Module):
    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, classes, bias=False)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.fc(x.float()), labels, label_smoothing=0.1)


def _classifier(kind: str, classes: int) -> nn.Module | None:
    if kind == "cosface":
        return CosFaceHead(backbone.FEATURE_DIM, classes)
    if kind == "softmax":
        return SoftmaxHead(backbone.FEATURE_DIM, classes)
    if kind == "none":
        return None
    raise ValueError(f"unknown classifier {kind!r}; choose cosface, softmax or none")


@torch.no_grad()
def embed_pixels(net: backbone.ReidNet, pixels: torch.Tensor, batch: int = 256) -> np.ndarray:
    """Flip-averaged unit descriptors of uint8 (n, 3, 224, 224) pixels (as the exported graph)."""
    net.eval()
    model = backbone.FlipAveraged(net)
    out = []
    for i in range(0, len(pixels), batch):
        x = pixels[i:i + batch].float().contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
            out.append(model(x).float().cpu())
    return F.normalize(torch.cat(out), dim=1).numpy()


@dataclass
class _Split:
    name: str
    train: list[reid_data.LabelledImage]
    val: list[reid_data.LabelledImage]


def _split(root: Path) -> _Split:
    items = reid_data.read_folder(root)
    if not items:
        raise ValueError(f"{root} holds no labelled images")
    train_ids, val_ids = reid_data.split_identities({it.identity for it in items})
    train_set, val_set = set(train_ids), set(val_ids)
    return _Split(root.name, [it for it in items if it.identity in train_set],
                  [it for it in items if it.identity in val_set])


def train(data_dirs: list[Path], out_dir: Path, recipe: Recipe, device: str = "cpu",
          time_budget_s: float | None = None, init: Path | None = None,
          eval_every: int = 10, log: Callable[[str], None] = print) -> dict:
    """Train on the training identities of every folder; write the weights and the validation
    identity lists into ``out_dir``; return the metadata stored with the weights.

    ``time_budget_s`` shortens the run to the whole epochs that fit (measured on the first
    steps); the epochs actually run are recorded, so ``epochs=`` that number reproduces it.
    """
    started = time.time()
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    dev = torch.device(device)
    torch.backends.cudnn.benchmark = True  # every batch has the same shape
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = [_split(Path(d)) for d in data_dirs]
    for s in splits:
        ids = sorted({it.identity for it in s.val})
        (out_dir / f"val_ids_{s.name}.txt").write_text("\n".join(ids) + "\n")

    train_items = [(d, it) for d, s in enumerate(splits) for it in s.train]
    keys = sorted({(d, it.identity) for d, it in train_items})
    label_of = {k: i for i, k in enumerate(keys)}
    labels = np.array([label_of[(d, it.identity)] for d, it in train_items])
    seq_names = sorted({it.sequence for _, it in train_items})
    seq_of = {s: i for i, s in enumerate(seq_names)}
    sequences = np.array([seq_of[it.sequence] for _, it in train_items])
    domains = np.array([d for d, _ in train_items])
    images = torch.from_numpy(_load_stored([it.path for _, it in train_items],
                                           recipe.store_size)).to(dev)
    val_pixels = {s.name: torch.from_numpy(_load_val([it.path for it in s.val])).to(dev)
                  for s in splits}
    log(f"{len(train_items)} training images of {len(keys)} dogs, "
        f"{sum(len(s.val) for s in splits)} validation images; loaded in {time.time() - started:.0f} s")

    net = backbone.build_trainable(recipe.pooling, recipe.neck, init).to(dev)
    net = net.to(memory_format=torch.channels_last)
    frozen = [net.trunk._conv_stem, net.trunk._bn0, *net.trunk._blocks[:recipe.train_from_block]]
    for module in frozen if recipe.train_from_block > 0 else []:
        module.requires_grad_(False)
    head = _classifier(recipe.classifier, len(keys))
    params = list(net.parameters()) + (list(head.to(dev).parameters()) if head else [])
    decay = [p for p in params if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in params if p.requires_grad and p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    sampler = PKSampler(labels, sequences, domains, recipe, rng)
    batch = recipe.ids_per_batch * recipe.images_per_id
    steps_per_epoch = max(1, math.ceil(len(train_items) / batch))
    epochs = recipe.epochs
    warmup = recipe.warmup_epochs * steps_per_epoch
    history: list[dict] = []

    def validate(epoch: int) -> None:
        row: dict = {"epoch": epoch}
        for s in splits:
            vec = embed_pixels(net, val_pixels[s.name])
            r = score(vec, [it.identity for it in s.val], [it.sequence for it in s.val])
            row[s.name] = {"rank1": round(r.rank1, 4), "rank5": round(r.rank5, 4),
                           "mAP": round(r.mAP, 4)}
        history.append(row)
        log(json.dumps(row))

    validate(0)
    step, epoch, clock = 0, 0, None
    use_amp = dev.type == "cuda"
    while epoch < epochs:
        net.train()
        if recipe.freeze_bn:
            for module in net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        for _ in range(steps_per_epoch):
            lr_scale = ((step + 1) / warmup if step < warmup else
                        0.5 * (1 + math.cos(math.pi * (step - warmup) /
                                            max(1, epochs * steps_per_epoch - warmup))))
            for group in opt.param_groups:
                group["lr"] = recipe.lr * lr_scale
            idx = torch.from_numpy(sampler.batch()).to(dev)
            x = augment(images[idx], recipe).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(labels).to(dev)[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                pooled = net.pooled(x)
                neck = net.neck(pooled.float()) if net.neck is not None else pooled
            loss = batch_hard_triplet(pooled, y, recipe.triplet_margin)
            if head is not None:
                loss = loss + head(neck, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == 10:
                clock = time.time()
            if step == 40 and time_budget_s and clock is not None:
                per_step = (time.time() - clock) / 30
                left = time_budget_s - (time.time() - started)
                # Keep 15 % for validation passes and saving.
                fit = int(0.85 * left / (per_step * steps_per_epoch)) + epoch
                if fit < epochs:
                    log(f"{per_step * 1000:.0f} ms a step: {fit} of {epochs} epochs fit the budget")
                    epochs = max(1, fit)
        epoch += 1
        if epoch % eval_every == 0 or epoch == epochs:
            log(f"epoch {epoch}/{epochs} loss {loss.item():.3f} {time.time() - started:.0f} s")
            validate(epoch)

    meta = {"recipe": {**asdict(recipe), "epochs": epochs}, "data": [s.name for s in splits],
            "train_images": len(train_items), "train_dogs": len(keys), "history": history,
            "seconds": round(time.time() - started), "device": str(dev)}
    backbone.save_weights(net.cpu(), out_dir / WEIGHTS_NAME, meta)
    log(f"wrote {out_dir / WEIGHTS_NAME} after {meta['seconds']} s")
    return meta


# The committed weights are a uniform "model soup" (Wortsman et al. 2022): the average of these
# fine-tunes, all started from the same ImageNet weights.  Each differs from Recipe() as shown;
# the epochs are those the GPU time budget allowed when the committed weights were trained.
_FROZEN_B8 = {"freeze_bn": True, "train_from_block": 8}
_LIGHT_AUG = {"erase": 0.0, "lowres": 0.0, "rotate_deg": 0.0}
_TRIPLET_ONLY = {"classifier": "none", "neck": False}
SOUP: dict[str, dict] = {
    "triplet_b8_e14": {**_FROZEN_B8, **_LIGHT_AUG, **_TRIPLET_ONLY, "epochs": 14},
    "triplet_b8_e17": {**_FROZEN_B8, **_LIGHT_AUG, **_TRIPLET_ONLY, "epochs": 17},
    "cosface_b8_e10": {**_FROZEN_B8, "epochs": 10},
    "cosface_b8_e19": {**_FROZEN_B8, "epochs": 19},
    "cosface_full_e27": {"freeze_bn": False, "epochs": 27},
    "cosface_equal_e27": {"freeze_bn": False, "domain_power": 0.0, "epochs": 27},
    "cosface_k8_e27": {"freeze_bn": False, "ids_per_batch": 16, "images_per_id": 8, "epochs": 27},
}


def average_weights(paths: list[Path], out: Path) -> None:
    """Uniform soup: the mean of the members' trunk weights, average-pooled, without a neck
    (members may differ in pooling or neck; the trunks share one architecture)."""
    soup = backbone.ReidNet()
    target = soup.state_dict()
    total = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in target.items()}
    metas = []
    for path in paths:
        member = backbone.load_weights(path)
        metas.append({"name": path.parent.name, **torch.load(path, weights_only=True)["meta"]})
        state = member.state_dict()
        for k in total:
            total[k] += state[k].double()
    count = len(paths)
    soup.load_state_dict({k: (v / count).to(target[k].dtype) for k, v in total.items()})
    backbone.save_weights(soup, out, {"soup": metas})


def train_soup(data_dirs: list[Path], out_dir: Path, members: list[str], device: str,
               log: Callable[[str], None] = print) -> Path:
    """Train each named SOUP member into ``out_dir/members/<name>`` and average them into
    ``out_dir/reid_lite0.pt`` (with the validation identity lists beside it)."""
    paths = []
    for name in members:
        member_dir = out_dir / "members" / name
        log(f"== {name}: {SOUP[name]}")
        train(data_dirs, member_dir, Recipe(**SOUP[name]), device, log=log)
        paths.append(member_dir / WEIGHTS_NAME)
    for ids_file in (out_dir / "members" / members[0]).glob("val_ids_*.txt"):
        (out_dir / ids_file.name).write_text(ids_file.read_text())
    average_weights(paths, out_dir / WEIGHTS_NAME)
    log(f"wrote the average of {len(paths)} fine-tunes to {out_dir / WEIGHTS_NAME}")
    return out_dir / WEIGHTS_NAME


def recipe_from_args(values: dict) -> Recipe:
    """A Recipe from ``--name value`` options (names as in the dataclass)."""
    return Recipe(**{f.name: values[f.name] for f in fields(Recipe) if values.get(f.name) is not None})


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


_PARSERS: dict[str, Callable[[str], object]] = {"int": int, "float": float, "str": str, "bool": _flag}


def parse_field(kind: str, value: str) -> object:
    """A recipe field's value from text; ``kind`` is the field's annotation ("int", "bool" …)."""
    return _PARSERS[kind](value)
