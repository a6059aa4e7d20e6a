"""The ``deepdefacer`` defacer: its ONNX graph against an independent numpy reference of each Keras
layer, its resampling against the formula the tool's SimpleITK calls reduce to, the mask rule, and
availability when the converted file is missing or corrupt.

The graph tests need ``<weights>/deepdefacer-2.1.2/model.hdf5`` and ``deepdefacer.onnx`` (made by
``defacebench weights fetch deepdefacer``, run by scripts/setup.sh); they are skipped with that
command when absent. The Keras comparison is slow and needs TensorFlow (never a project dependency):
it runs under ``$DEFACEBENCH_TF_PYTHON`` (a Python with tensorflow, e.g. a separate venv) when set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from defacebench.errors import DefaceError
from defacers import _deepdefacer_net as net
from defacers.deepdefacer import Deepdefacer, DeepdefacerParams, _image, predict_keep_mask, resample_like_tool

TOL = 1e-4  # max abs difference of the sigmoid output allowed between the graph and a reference


def _require_weights() -> None:
    if not net.source_path().is_file() or net.problem():
        pytest.skip(f"deepdefacer weights not made here: run `{net.FETCH}` (or ./scripts/setup.sh)")


# ------------------------------------------------------------------------------------------------
# Independent reference: each Keras 2.2 layer in plain numpy (float64), weights read with h5py here
# ------------------------------------------------------------------------------------------------


def _keras_layers(path: Path) -> tuple[list[dict], dict[str, list[np.ndarray]]]:
    import h5py

    with h5py.File(str(path), "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        group = f["model_weights"]
        weights = {}
        for layer in layers:
            name = layer["config"]["name"]
            names = group[name].attrs["weight_names"] if name in group else []
            weights[name] = [np.asarray(group[name][n.decode() if isinstance(n, bytes) else n], np.float64)
                             for n in names]
    return layers, weights


def _ref_conv3d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, padding: str) -> np.ndarray:
    """Keras Conv3D, channels first, stride 1: x (C, D, H, W), kernel (kd, kh, kw, in, out); TF's
    'same' puts the odd pixel of padding after."""
    k = kernel.shape[:3]
    if padding == "same":
        x = np.pad(x, [(0, 0)] + [((n - 1) // 2, n - 1 - (n - 1) // 2) for n in k])
    windows = sliding_window_view(x, k, axis=(1, 2, 3))  # (C, D, H, W, kd, kh, kw)
    y = np.tensordot(windows, kernel, axes=([0, 4, 5, 6], [3, 0, 1, 2]))  # (D, H, W, out)
    return np.moveaxis(y, -1, 0) + bias[:, None, None, None]


def _ref_maxpool(x: np.ndarray) -> np.ndarray:
    c, d, h, w = x.shape
    return x.reshape(c, d // 2, 2, h // 2, 2, w // 2, 2).max(axis=(2, 4, 6))


def _ref_upsample(x: np.ndarray) -> np.ndarray:
    return x.repeat(2, axis=1).repeat(2, axis=2).repeat(2, axis=3)


def reference_forward(path: Path, volume: np.ndarray) -> np.ndarray:
    """The network's output (D, H, W) for one (D, H, W) input, layer by layer in numpy."""
    layers, weights = _keras_layers(path)
    out: dict[str, np.ndarray] = {}
    for layer in layers:
        c, kind = layer["config"], layer["class_name"]
        ins = [out[n[0]] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            y = volume[None].astype(np.float64)
        elif kind == "Conv3D":
            y = _ref_conv3d(ins[0], *weights[c["name"]], c["padding"])
            y = {"relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[c["activation"]](y)
        elif kind == "MaxPooling3D":
            y = _ref_maxpool(ins[0])
        elif kind == "UpSampling3D":
            y = _ref_upsample(ins[0])
        elif kind == "Concatenate":
            y = np.concatenate(ins, axis=0)
        elif kind == "Dropout":
            y = ins[0]
        else:
            raise AssertionError(f"reference has no {kind}")
        out[c["name"]] = y
    return out[layers[-1]["config"]["name"]][0]


def _graph(volume: np.ndarray) -> np.ndarray:
    from recognizers._backends.onnx_graph import session

    return session(net.onnx_path(), 1).run(None, {"volume": volume[None, None].astype(np.float32)})[0][0, 0]


def test_graph_matches_numpy_reference_on_random_input(rng):
    _require_weights()
    volume = rng.random((32, 48, 16)).astype(np.float32)  # non-cubic; each side a multiple of 16
    diff = np.abs(_graph(volume) - reference_forward(net.source_path(), volume)).max()
    assert diff <= TOL, f"ONNX graph vs numpy reference: max abs difference {diff:.2e} > {TOL}"


def test_graph_matches_numpy_reference_on_a_head_crop(template_ct):
    """A crop of a real preprocessed input (the template head through the tool's resampling and
    normalisation), over the face, where the mask decides."""
    _require_weights()
    head = template_ct(4.0)
    volume = resample_like_tool(_image(head.data), (160, 160, 160))
    volume = ((volume - volume.min()) / (volume.max() - volume.min() + 1e-7)).astype(np.float32)
    crop = volume[64:96, 112:160, 0:32]  # in front of and below the face: kept and removed voxels
    graph, ref = _graph(crop), reference_forward(net.source_path(), crop)
    assert np.abs(graph - ref).max() <= TOL
    assert 0 < (ref >= 0.5).mean() < 1, "the crop should hold both kept and removed voxels"


def test_conversion_reproduces_the_pinned_file():
    """The converter is deterministic: rebuilding from the HDF5 gives the pinned size and sha256."""
    _require_weights()
    import hashlib

    data = net.build_model(net.source_path()).SerializeToString()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (net.ONNX_SIZE, net.ONNX_SHA256)


_KERAS_SCRIPT = """
import json, sys
import numpy as np
import h5py, keras
path, x_path, out_path = sys.argv[1:4]
with h5py.File(path, "r") as f:
    layers = json.loads(f.attrs["model_config"])["config"]["layers"]
    group = f["model_weights"]
    arrays = {l["config"]["name"]: [np.asarray(group[l["config"]["name"]][n.decode()]) for n in
              group[l["config"]["name"]].attrs["weight_names"]] if l["config"]["name"] in group else []
              for l in layers}
keras.backend.set_image_data_format("channels_first")
t = {}
for l in layers:
    c, kind = dict(l["config"]), l["class_name"]
    if kind == "InputLayer":
        t[c["name"]] = inp = keras.Input(shape=(1, None, None, None)); continue
    ins = [t[n[0]] for n in l["inbound_nodes"][0]]
    keep = {k: c[k] for k in ("filters", "kernel_size", "padding", "activation", "pool_size", "size",
                              "axis", "rate", "data_format") if k in c}
    layer = getattr(keras.layers, {"Conv3D": "Conv3D", "MaxPooling3D": "MaxPooling3D", "UpSampling3D":
             "UpSampling3D", "Concatenate": "Concatenate", "Dropout": "Dropout"}[kind])(name=c["name"], **keep)
    t[c["name"]] = layer(ins if kind == "Concatenate" else ins[0])
    if arrays[c["name"]]:
        layer.set_weights(arrays[c["name"]])
model = keras.Model(inp, t[layers[-1]["config"]["name"]])
np.save(out_path, model.predict(np.load(x_path), verbose=0))
"""


@pytest.mark.slow
def test_graph_matches_keras(tmp_path, rng):
    """Keras (TensorFlow) running the same HDF5 layers and weights: max abs difference <= 1e-4."""
    _require_weights()
    python = os.environ.get("DEFACEBENCH_TF_PYTHON", "")
    if not python or not Path(python).is_file():
        pytest.skip("set DEFACEBENCH_TF_PYTHON to a Python with tensorflow-cpu and h5py (never the project's venv)")
    x = rng.random((1, 1, 32, 48, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "keras_ref.py"
    script.write_text(_KERAS_SCRIPT)
    run = subprocess.run([python, str(script), str(net.source_path()), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    diff = np.abs(np.load(tmp_path / "y.npy")[0, 0] - _graph(x[0, 0])).max()
    assert diff <= TOL, f"ONNX graph vs Keras: max abs difference {diff:.2e}"


# ------------------------------------------------------------------------------------------------
# Resampling: the tool's SimpleITK calls reduce to an index map
# ------------------------------------------------------------------------------------------------


def _index_formula(data: np.ndarray, shape) -> np.ndarray:
    """Output index i samples input index (n_in - 1) / (n_out - 1) * (i - n_out / 2) + n_in / 2,
    linearly; within half a voxel outside the edge the edge voxel (ITK's linear interpolator), further
    out 0 (the tool's default value: a shrink by more than about 2 loses the first slices)."""
    from scipy import ndimage

    axes = [(n_in - 1) / (n_out - 1) * (np.arange(n_out) - n_out / 2) + n_in / 2
            for n_in, n_out in zip(data.shape, shape)]
    grid = np.meshgrid(*axes, indexing="ij")
    inside = np.all([(g >= -0.5) & (g < n - 0.5) for g, n in zip(grid, data.shape)], axis=0)
    return np.where(inside, ndimage.map_coordinates(data.astype(np.float64), grid, order=1, mode="nearest"), 0.0)


@pytest.mark.parametrize(("shape_in", "shape_out"), [((23, 31, 17), (32, 16, 48)), ((40, 20, 30), (17, 9, 25))])
def test_resample_is_the_index_map(rng, shape_in, shape_out):
    data = rng.normal(size=shape_in).astype(np.float32)
    got = resample_like_tool(_image(data), shape_out)
    assert got.shape == shape_out
    np.testing.assert_allclose(got, _index_formula(data, shape_out), atol=1e-5)


def test_resample_ignores_the_file_geometry(tmp_path, rng):
    """The tool reads the file with SimpleITK (oblique direction, spacing, origin); the in-memory
    image without that geometry resamples to the same values."""
    import SimpleITK as sitk

    data = rng.normal(size=(21, 26, 15)).astype(np.float32)
    t = np.deg2rad(12)
    rotation = np.array([[0, -1, 0], [np.cos(t), 0, -np.sin(t)], [np.sin(t), 0, np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation @ np.diag([0.9, 1.3, 2.5]), [40, -20, 7]
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "oblique.nii.gz"))
    from_file = resample_like_tool(sitk.ReadImage(str(tmp_path / "oblique.nii.gz")), (16, 32, 48))
    np.testing.assert_allclose(resample_like_tool(_image(data), (16, 32, 48)), from_file, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# The plugin
# ------------------------------------------------------------------------------------------------


def test_deface_multiplies_by_the_resampled_mask(tmp_path, template_ct, write_ct, monkeypatch):
    """The output is input x the tool's keep mask; removed = mask < 1; nothing written to the cwd."""
    _require_weights()
    head = template_ct(4.0)
    src = write_ct(head, tmp_path / "in" / "head.nii.gz")
    work, cwd = tmp_path / "work", tmp_path / "cwd"
    work.mkdir(), cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = Deepdefacer(DeepdefacerParams(input_shape=(64, 64, 64))).deface(src, work)
    keep = np.asarray(nib.load(str(work / "deepdefacer_mask.nii.gz")).dataobj)
    out = nib.load(str(result.volume_path))
    np.testing.assert_allclose(np.asarray(out.dataobj), head.data * keep, atol=1e-3)
    np.testing.assert_allclose(out.affine, head.affine)
    assert (np.asarray(nib.load(str(result.mask_path)).dataobj) == (keep < 1)).all()
    assert 0 < (keep < 1).mean() < 0.5, "something, not most, of the head is removed"
    assert list(cwd.iterdir()) == []
    assert "deepdefacer 2.1.2" in result.tool_version and "intensities as they are" in result.log


def test_ct_input_t1_like_changes_the_mask(template_ct):
    """``as_is`` and ``t1_like`` give the network different inputs on CT, hence different masks."""
    _require_weights()
    head = template_ct(4.0)
    from defacebench.anatomy.registration import ct_to_t1

    small = DeepdefacerParams(input_shape=(64, 64, 64))
    as_is = predict_keep_mask(head.data, small)
    mapped = predict_keep_mask(ct_to_t1(head.data), small)
    assert as_is.shape == mapped.shape == head.data.shape
    assert (as_is != mapped).any()


def test_missing_or_corrupt_onnx_makes_it_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    avail = Deepdefacer().available()
    assert not avail.ok and net.FETCH in avail.reason and "not found" in avail.reason
    (tmp_path / net.ONNX_NAME).write_bytes(b"\0" * 100)
    avail = Deepdefacer().available()
    assert not avail.ok and f"{net.FETCH} --force" in avail.reason
    with pytest.raises(DefaceError, match="weights fetch deepdefacer"):
        Deepdefacer().deface(tmp_path / "any.nii.gz", tmp_path)


def test_weights_records_name_both_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    records = {r.name: r for r in Deepdefacer().weights()}
    assert set(records) == {net.ONNX_NAME, "model.hdf5"}
    assert records[net.ONNX_NAME].sha256 == net.ONNX_SHA256 and records["model.hdf5"].sha256 == net.HDF5_SHA256
    assert all(r.fetch is not None and Path(r.path).is_relative_to(tmp_path) for r in records.values())


def test_a_corrupt_sdist_member_is_refused(tmp_path, monkeypatch):
    """extract_hdf5 checks the member's digest before writing anything."""
    import io
    import tarfile

    from defacebench.errors import WeightsError

    monkeypatch.setenv("DEFACEBENCH_WEIGHTS", str(tmp_path))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(net.MEMBER)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"junk"))
    with pytest.raises(WeightsError, match="not the pinned release"):
        net.extract_hdf5(buffer.getvalue())
    assert not net.source_path().exists()


@pytest.mark.parametrize(("key", "value"), [("ct_input", "hu"), ("threshold", 1.0), ("input_shape", [160, 160, 150]),
                                            ("threads", 0), ("input_shape", [160, 160, 0])])
def test_params_from_the_plugins_file_are_checked(key, value):
    """The plugins file's values go through the declared ranges, choices and the multiple-of-16 rule."""
    from defacebench.errors import PluginsFileError
    from defacebench.plugins.params import params_from_table, range_problems

    try:
        params = params_from_table(DeepdefacerParams(), {key: value}, "defacebench.toml [defacers.deepdefacer]")
    except PluginsFileError:
        return
    assert range_problems(params), f"{key} = {value!r} was accepted"


def test_a_4d_input_is_refused_naming_the_file(tmp_path):
    _require_weights()
    path = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 9, 10, 2), np.float32), np.eye(4)), str(path))
    with pytest.raises(DefaceError, match="four_d.nii.gz"):
        Deepdefacer().deface(path, tmp_path)


def test_the_converter_refuses_what_it_does_not_map(tmp_path):
    """A layer outside the mapped set (here channels-last) raises ConversionUnsupported naming it."""
    import h5py

    _require_weights()
    copy = tmp_path / "model.hdf5"
    shutil.copyfile(net.source_path(), copy)
    with h5py.File(str(copy), "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][1]["config"]["data_format"] = "channels_last"
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(net.ConversionUnsupported, match="conv3d_1"):
        net.build_model(copy)



def test_list_shows_the_licence_and_modality_notes():
    from defacebench.cli.list import plugin_rows
    from defacebench.plugins.registry import build_registry

    row = next(r for r in plugin_rows(build_registry(), ["defacers"]) if r["name"] == "deepdefacer")
    assert "licence: MIT" in row["notes"] and "modalities: mri, ct" in row["notes"]
    assert "T1-weighted MRI" in row["notes"] and "CT goes in as HU" in row["notes"]


def _tiny_resize(scales, mode="nearest"):
    """A one-node graph: 5-D Resize of ``volume`` by ``scales`` (the converter's attributes)."""
    from recognizers._backends.onnx_graph import GraphBuilder

    g = GraphBuilder("tiny_resize")
    const = g.const(np.array(scales, np.float32), "scales")
    extra = {"nearest_mode": "floor"} if mode == "nearest" else {}
    g.op("Resize", ["volume", "", const], name="out", mode=mode, coordinate_transformation_mode="asymmetric", **extra)
    return g.model([("volume", ["n", "c", "d", "h", "w"])], [("out", ["n", "c", "D", "H", "W"])])


def test_upsampling_rewrite_repeats_voxels_per_axis(rng):
    """Unequal whole factors per axis, two channels: the rewritten graph is numpy's repeat, exactly."""
    from recognizers._backends.onnx_graph import session

    x = rng.random((1, 2, 3, 4, 5)).astype(np.float32)
    model = net.upsampling_as_copies(_tiny_resize([1, 1, 2, 3, 1]))
    assert [n.op_type for n in model.graph.node].count("Resize") == 0
    got = session(model, 1).run(None, {"volume": x})[0]
    assert np.array_equal(got, x.repeat(2, axis=2).repeat(3, axis=3))


@pytest.mark.parametrize("scales, mode", [([1, 1, 1.5, 2, 2], "nearest"), ([1, 1, 2, 2, 2], "linear")])
def test_upsampling_rewrite_leaves_other_resizes_alone(scales, mode):
    model = _tiny_resize(scales, mode)
    assert net.upsampling_as_copies(model).SerializeToString() == model.SerializeToString()


def test_session_graph_gives_the_pinned_graphs_numbers_bit_for_bit(rng):
    """The deface path's session (upsamplings as copies) against the pinned file's own graph."""
    import onnx

    from defacers.deepdefacer import _session
    from recognizers._backends.onnx_graph import session

    _require_weights()
    model = onnx.load(str(net.onnx_path()))
    assert [n.op_type for n in model.graph.node].count("Resize") == 4
    volume = rng.random((1, 1, 32, 48, 16)).astype(np.float32)
    pinned = session(net.onnx_path(), 1).run(None, {"volume": volume})[0]
    assert np.array_equal(_session(net.onnx_path(), 1).run(None, {"volume": volume})[0], pinned)
