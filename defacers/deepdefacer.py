"""``deepdefacer``: deepdefacer 2.1.2's trained 3-D U-Net (MIT), its preprocessing and its mask rule, on onnxruntime.

What the tool does (``deepdefacer/defacer.py`` and ``defacer_utils.py`` of the sdist), reproduced step
by step:

1. ``resample_image(file, [160, 160, 160])``: the volume, as SimpleITK reads it, is resampled with
   linear interpolation onto a 160^3 grid spanning the same index range ((size - 1) x spacing per axis,
   centres aligned; the aspect ratio is not kept). :func:`resample_like_tool` runs the same SimpleITK
   calls (``sitk.CompositeTransform`` replacing the removed ``Transform.AddTransform``).
2. Min-max normalisation of the resampled volume to [0, 1]; the network (channels first, the volume's
   own voxel axes) predicts a keep probability per voxel; ``>= 0.5`` is kept.
3. The binary mask is resampled back to the input's shape by the same routine (linear, so its border
   becomes fractional) and the input is **multiplied** by it: removed voxels become 0 (water on CT:
   use a cleanup policy), border voxels are scaled.

The tool writes its resampled mask to ``mask_intermediate.nii.gz`` in the current directory; here that
image is made in memory with the geometry SimpleITK gives an identity-affine NIfTI, so nothing is
written outside the job's workdir. The network was trained on T1-weighted MRI; on CT it gets HU as
they are by default, through the tool's own min-max normalisation (``ct_input="as_is"``); mapping HU to
a T1-like contrast first (``"t1_like"``) removed less of the face on the CT sample (docs/models.md). The removed-voxel mask marks every voxel the multiplication changed
(mask < 1). The network runs from ``<weights>/deepdefacer.onnx``, made by setup
(:mod:`defacers._deepdefacer_net`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Annotated, Literal

import nibabel as nib
import numpy as np

from defacebench.anatomy.masks import nifti_modality
from defacebench.anatomy.registration import CtToT1Params, ct_to_t1
from defacebench.contracts import Availability, DefaceResult, Range, WeightFile
from defacebench.errors import DefaceError
from defacers import _deepdefacer_net as net
from defacers._external import write_removed_mask

KEEP_MASK_NAME = "deepdefacer_mask.nii.gz"


@dataclass(frozen=True)
class DeepdefacerParams:
    """``threshold``: keep probability at or above which a voxel is kept (the tool's 0.5);
    ``input_shape``: the grid the network sees (the tool's 160^3; each side a multiple of 16, the
    U-Net's four poolings); ``ct_input``: on CT, ``"as_is"`` gives the network HU as the tool would
    (its min-max normalisation only), ``"t1_like"`` maps HU to a T1-like contrast with ``ct_mapping``
    first; ``threads``: onnxruntime and ITK threads (1: the harness runs a process per core)."""

    threshold: Annotated[float, Range(gt=0, lt=1)] = 0.5
    input_shape: tuple[Annotated[int, Range(ge=16)], Annotated[int, Range(ge=16)],
                       Annotated[int, Range(ge=16)]] = (160, 160, 160)
    ct_input: Literal["as_is", "t1_like"] = "as_is"
    ct_mapping: CtToT1Params = field(default_factory=CtToT1Params)
    threads: Annotated[int, Range(ge=1)] = 1

    def __post_init__(self) -> None:
        """What a Range cannot say: the U-Net's four poolings need sides that are multiples of 16."""
        if len(self.input_shape) != 3 or any(int(s) % 16 for s in self.input_shape):
            raise ValueError(f"DeepdefacerParams.input_shape must be three multiples of 16, got {self.input_shape!r}")


class Deepdefacer:
    """``deepdefacer``: the deepdefacer U-Net's face mask (see the module docstring)."""

    name = "deepdefacer"
    version = "1"
    deterministic = True
    licence = "MIT (deepdefacer 2.1.2 code and model.hdf5)"
    needs = "onnxruntime and the ONNX file scripts/setup.sh converts from the sdist's model.hdf5 (defacebench weights fetch deepdefacer; no TensorFlow)"
    modalities = ("mri", "ct")
    modality_notes = ("trained on T1-weighted MRI; CT goes in as HU through the tool's own min-max "
                      "normalisation (ct_input='as_is', the default; 't1_like' maps HU to a T1-like "
                      "contrast first, which removed less face on the CT sample)")

    def __init__(self, params: DeepdefacerParams | None = None) -> None:
        self.params = params or DeepdefacerParams()

    def weights(self) -> list[WeightFile]:
        """The converted graph and the package's HDF5 (both made by ``defacebench weights fetch deepdefacer``)."""
        return net.weight_files()

    def available(self) -> Availability:
        """onnxruntime, onnx (the session's graph rewrite) and SimpleITK must import; the ONNX file
        must be present with its pinned digest."""
        import importlib.util

        for module, fix in (("onnxruntime", "pip install onnxruntime"), ("onnx", "pip install onnx"),
                            ("SimpleITK", "pip install SimpleITK")):
            if importlib.util.find_spec(module) is None:
                return Availability.no(f"python module {module} not installed: {fix} (or defacebench[deepdefacer])")
        problem = net.problem()
        return Availability.no(problem) if problem else Availability.yes()

    def tool_version(self) -> str:
        """The upstream package and model, and the runtime that decides the numbers."""
        try:
            ort = metadata.version("onnxruntime")
        except metadata.PackageNotFoundError:
            ort = "unknown"
        return (f"deepdefacer {net.PACKAGE_VERSION} model.hdf5 sha256 {net.HDF5_SHA256[:12]}; converter "
                f"{net.CONVERTER_VERSION}; onnxruntime {ort}")

    def deface(self, volume_path: Path, workdir: Path) -> DefaceResult:
        """Predict the keep mask, multiply; write ``defaced.nii.gz``, the tool's mask and the removed mask."""
        volume_path, workdir = Path(volume_path), Path(workdir)
        avail = self.available()
        if not avail.ok:
            raise DefaceError(f"deepdefacer cannot run: {avail.reason}")
        img, data = _load(volume_path)
        modality = nifti_modality(img, data)
        mapped = modality == "ct" and self.params.ct_input == "t1_like"
        start = time.process_time()
        keep = predict_keep_mask(ct_to_t1(data, self.params.ct_mapping) if mapped else data, self.params)
        seconds = time.process_time() - start
        out = workdir / "defaced.nii.gz"
        header = img.header.copy()
        header.set_data_dtype(np.float32)
        nib.save(nib.Nifti1Image((data * keep).astype(np.float32), img.affine, header), str(out))
        nib.save(nib.Nifti1Image(keep, img.affine), str(workdir / KEEP_MASK_NAME))
        removed = keep < 1.0
        mask = write_removed_mask(volume_path, out, workdir, removed=removed)
        log = (f"deepdefacer: {modality.upper()} input, "
               f"{'HU mapped to a T1-like contrast' if mapped else 'intensities as they are'}; "
               f"network {self.params.input_shape} in {seconds:.1f} CPU s; {int((keep == 0).sum())} voxels removed, "
               f"{int((removed & (keep > 0)).sum())} border voxels scaled; params {asdict(self.params)}")
        return DefaceResult(volume_path=out, mask_path=mask, tool_version=self.tool_version(), log=log)


def predict_keep_mask(data: np.ndarray, params: DeepdefacerParams) -> np.ndarray:
    """The tool's keep mask on ``data``'s grid (float32 in [0, 1]): resample, normalise, predict,
    threshold, resample back."""
    volume = resample_like_tool(_image(data), params.input_shape, params.threads).astype(np.float32)
    low, high = float(volume.min()), float(volume.max())
    normalised = (volume - low) / (high - low + 1e-7)  # the tool's min-max normalisation, its epsilon
    prob = _session(net.onnx_path(), int(params.threads)).run(None, {"volume": normalised[None, None]})[0]
    binary = np.where(prob[0, 0] >= params.threshold, 1.0, 0.0).astype(np.float32)
    return resample_like_tool(_image(binary), data.shape, params.threads).astype(np.float32)


def resample_like_tool(image, shape, threads: int = 1) -> np.ndarray:
    """deepdefacer's ``resample_image``: ``image`` (SimpleITK) resampled linearly to ``shape``
    (x, y, z = the NIfTI's voxel axes) over the same index range; returned as an (x, y, z) array.
    ``threads``: ITK threads (SimpleITK would take every core; the harness runs a process per core)."""
    import SimpleITK as sitk

    dim = image.GetDimension()
    physical = [(sz - 1) * sp for sz, sp in zip(image.GetSize(), image.GetSpacing())]
    reference = sitk.Image([int(s) for s in shape], image.GetPixelIDValue())
    reference.SetOrigin([0.0] * dim)
    reference.SetSpacing([p / (int(s) - 1) for p, s in zip(physical, shape)])
    reference.SetDirection(np.identity(dim).flatten().tolist())
    reference_center = np.array(reference.TransformContinuousIndexToPhysicalPoint(
        (np.array(reference.GetSize()) / 2.0).tolist()))
    transform = sitk.AffineTransform(dim)
    transform.SetMatrix(image.GetDirection())
    transform.SetTranslation(np.array(image.GetOrigin()).tolist())
    image_center = np.array(image.TransformContinuousIndexToPhysicalPoint((np.array(image.GetSize()) / 2.0).tolist()))
    centering = sitk.TranslationTransform(dim)
    centering.SetOffset((np.array(transform.GetInverse().TransformPoint(image_center.tolist())) - reference_center).tolist())
    # the tool's Transform(transform).AddTransform(centering): centering applied first, then transform
    composite = sitk.CompositeTransform([transform, centering])
    resample = sitk.ResampleImageFilter()  # sitk.Resample(image, reference, composite, sitkLinear, 0.0)
    resample.SetReferenceImage(reference)
    resample.SetTransform(composite)
    resample.SetInterpolator(sitk.sitkLinear)
    resample.SetDefaultPixelValue(0.0)
    resample.SetNumberOfThreads(max(1, int(threads)))
    resampled = resample.Execute(image)
    return np.swapaxes(sitk.GetArrayFromImage(resampled), 0, -1)


def _image(data: np.ndarray):
    """``data`` (x, y, z) as a SimpleITK image. Only the index grid matters to
    :func:`resample_like_tool` (origin, spacing and direction cancel), so neither the file's geometry
    nor that of the tool's identity-affine ``mask_intermediate.nii.gz`` is copied."""
    import SimpleITK as sitk

    return sitk.GetImageFromArray(np.ascontiguousarray(np.swapaxes(data, 0, -1)))


@lru_cache(maxsize=2)
def _session(path: Path, threads: int):
    """One onnxruntime session per process and thread count, on the graph with its upsamplings as
    block copies (:func:`defacers._deepdefacer_net.upsampling_as_copies`: the same numbers, less CPU)."""
    import onnx

    from recognizers._backends.onnx_graph import session

    return session(net.upsampling_as_copies(onnx.load(str(path))), threads)


def _load(volume_path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The input image and its data (float32, 3-D, the tool squeezes singleton axes); DefaceError naming the file."""
    try:
        img = nib.load(str(volume_path))
        data = np.squeeze(np.asarray(img.dataobj, np.float32))
    except Exception as exc:  # nibabel raises several types
        raise DefaceError(f"{volume_path}: cannot read the input NIfTI ({exc}). Fix: give a valid .nii/.nii.gz") from exc
    if data.ndim != 3 or data.shape != tuple(img.shape[:3]) or min(data.shape) < 2:
        raise DefaceError(f"{volume_path}: deepdefacer needs a 3-D volume with at least 2 voxels per axis, "
                          f"got shape {img.shape}. Fix: give one 3-D acquisition")
    return img, data
