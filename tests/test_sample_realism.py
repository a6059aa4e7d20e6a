"""The sample's faces against the seed study's camera (issue 22; docs/realism.md).

Cheap: the phantom's face calibration (lower-face stretch, relief warp, head pose, gantry tilt sign,
per-subject feature bumps, mirrored identity bumps, the field of view centred on the head) does what
its parameters say on small synthetic grids. Slow: on the default 16-subject CT sample (format 5: the
calibrated face and pose), ``vtk_volume`` with ``camera="seed"`` (22.5 degrees above the face) finds
faces on >= 90 % of the undefaced renders with dlib_hog and with mtcnn (measured 31 / 32 and 32 / 32);
on the template's face (``SampleParams.template()``, the default up to format 4), at least as often
as measured then.
"""

from __future__ import annotations

import numpy as np
import pytest

from defacebench.data.phantom import shapes
from defacebench.data.phantom.face import FaceParams, apply_relief, stretch_volume, stretch_z, stretched_landmarks
from defacebench.data.phantom.identity import PoseParams, random_pose
from defacebench.data.phantom.template import Landmarks
from tests.seed_camera_helpers import seed_camera_rates

# issue 22's target (>= 0.9 for both detectors) holds on the default 16-subject sample; the template
# face's floors guard the figures measured on it in format 4 (docs/realism.md "Checks kept")
TEMPLATE_HOG, TEMPLATE_MTCNN = 0.25, 0.8  # measured 9 / 32 and 28 / 32 (format 4)
SEED_FLOOR = {"default": {"dlib_hog": 0.9, "mtcnn": 0.9}, "template": {"dlib_hog": TEMPLATE_HOG, "mtcnn": TEMPLATE_MTCNN}}


def test_stretch_moves_the_lower_face_down_and_keeps_the_upper_face():
    p = FaceParams(stretch=1.4, stretch_top_z=-64.0, stretch_length_mm=46.0)
    z = np.linspace(-200.0, 80.0, 400)
    out = stretch_z(z, p)
    assert np.all(np.diff(out) > 0), "the map keeps the order of heights"
    assert np.allclose(out[z >= -64.0], z[z >= -64.0])
    assert stretch_z(-110.0, p) == pytest.approx(-64.0 - 46.0 * 1.4)
    assert np.allclose(out[z < -110.0] - z[z < -110.0], -46.0 * 0.4)
    lm = stretched_landmarks(Landmarks(), p)
    assert lm.chin[2] == pytest.approx(float(stretch_z(Landmarks().chin[2], p)))
    assert lm.nose_tip == Landmarks().nose_tip and lm.eye_left == Landmarks().eye_left


def test_stretched_volume_puts_a_template_height_where_the_map_says():
    grid = shapes.Grid((3, 4, 120), 1.5, (-2.0, 0.0, -150.0))
    p = FaceParams(stretch=1.3, stretch_top_z=-60.0, stretch_length_mm=40.0)
    zs = grid.axes()[2]
    marker = np.zeros(grid.shape, np.float32)
    k = int(np.argmin(np.abs(zs + 90.0)))  # a thin layer at template height ~-90 mm
    marker[:, :, k] = 1.0
    out = stretch_volume(marker, grid, p)
    peak = zs[np.argmax(out[1, 1])]
    assert abs(peak - float(stretch_z(zs[k], p))) <= grid.step
    assert np.array_equal(stretch_volume(marker, grid, FaceParams(stretch=1.0)), marker), "stretch 1 leaves it alone"


def test_relief_moves_the_skin_forward_by_its_amplitude_at_its_centre():
    grid = shapes.Grid((21, 80, 21), 1.0, (-10.0, 40.0, -10.0))
    y = grid.axes()[1]
    sdf = np.broadcast_to((100.0 - y)[None, :, None], grid.shape).astype(np.float32)  # skin plane at y = 100
    p = FaceParams(relief=((0.0, 0.0, 4.0, 4.0, 6.0), (8.0, 8.0, 3.0, 3.0, -2.0)), relief_front_y=(50.0, 70.0),
                   relief_gain=1.0)
    out = apply_relief(sdf, grid, p)
    front = lambda i, k: y[np.nonzero(out[i, :, k] > 0)[0].max()]  # noqa: E731
    assert front(10, 10) == pytest.approx(106.0, abs=1.0)   # centre of the +6 mm bump
    assert front(18, 18) == pytest.approx(98.0, abs=1.0)    # centre of the -2 mm dip
    assert front(0, 0) == pytest.approx(100.0, abs=1.0)     # far from both
    assert np.array_equal(apply_relief(sdf, grid, FaceParams(relief=())), sdf)


def test_pose_pitch_is_drawn_around_its_mean():
    p = PoseParams(pitch_mean_deg=-10.0, pitch_deg=12.0)
    rng = np.random.default_rng(0)
    pitches = []
    for _ in range(300):
        rot = random_pose(rng, p)[:3, :3]
        pitches.append(np.degrees(np.arctan2(rot[2, 1], rot[1, 1])))  # the anterior axis' rise
    pitches = np.asarray(pitches)
    assert -22.6 <= pitches.min() and pitches.max() <= 2.6
    assert np.mean(pitches) == pytest.approx(-10.0, abs=1.5)


def test_gantry_tilt_takes_the_sign_of_tilt_signs():
    from dataclasses import replace

    from defacebench.data.phantom.scanner import ScannerParams, draw_geometry

    rng = np.random.default_rng(0)
    p = ScannerParams(tilt_fraction=1.0)
    tilts = [draw_geometry(rng, p, 90.0).tilt_deg for _ in range(40)]
    assert all(12.0 <= t <= 22.0 for t in tilts), "the default tilts the plane's anterior end up"
    both = [draw_geometry(rng, replace(p, tilt_signs=(-1.0, 1.0)), 90.0).tilt_deg for _ in range(40)]
    assert min(both) < 0 < max(both)


def test_feature_bumps_sit_on_the_face_and_scale_with_relief_sd():
    from defacebench.data.phantom.anatomy import BaseAnatomy
    from defacebench.data.phantom.identity import IdentityParams, make_identity

    front = np.array([[x, 90.0 - 0.01 * x * x, z] for x in range(-40, 41, 4) for z in range(-130, 1, 4)], float)
    base = BaseAnatomy(grid=None, labels=None, hu=None, t1=None, face_points=front,
                       surface_points=front, teeth=np.zeros((0, 3)))
    relief = ((0.0, -62.0, 8.0, 12.0, 10.0), (20.0, -30.0, 5.0, 5.0, -4.0))
    plain = make_identity(base, np.random.default_rng(1), IdentityParams(), relief)
    n_face = round(IdentityParams().face_fraction * IdentityParams().n_bumps)
    assert len(plain.centres) == IdentityParams().n_bumps + n_face, "relief_sd 0 adds no bump (only the mirrors)"
    sds = []
    for sd in (0.1, 0.4):
        ident = make_identity(base, np.random.default_rng(1), IdentityParams(relief_sd=sd, feature_shift_mm=1.0), relief)
        extra = ident.centres[-2:]
        assert np.allclose(extra[:, [0, 2]], [[0.0, -62.0], [20.0, -30.0]])
        assert np.allclose(extra[:, 1], [90.0, 86.0])  # on the face's front at that height
        assert np.allclose(ident.sigma_mm[-2:, 0], [8.0, 6.0])  # at least 6 mm wide
        sds.append(np.abs(ident.vectors[-2:, 1] / np.array([10.0, 4.0])))
    assert np.allclose(sds[1], 4 * sds[0])  # the same draws, scaled by relief_sd


def _front_base(step: float = 4.0):
    """A stand-in anatomy whose face points lie on a curved front (enough for make_identity)."""
    from defacebench.data.phantom.anatomy import BaseAnatomy

    front = np.array([[x, 90.0 - 0.01 * x * x, z] for x in np.arange(-40, 41, step) for z in np.arange(-130, 1, step)])
    return BaseAnatomy(grid=None, labels=None, hu=None, t1=None, face_points=front, surface_points=front,
                       teeth=np.zeros((0, 3)))


@pytest.mark.parametrize("asymmetry", [0.0, 0.2, 0.6])
def test_face_bumps_come_in_mirrored_pairs(asymmetry):
    from defacebench.data.phantom.identity import IdentityParams, displacement, make_identity

    base = _front_base()
    p = IdentityParams(face_fraction=1.0, asymmetry=asymmetry)
    ident = make_identity(base, np.random.default_rng(3), p)
    n = p.n_bumps
    assert len(ident.centres) == 2 * n
    np.testing.assert_allclose(ident.centres[n:], ident.centres[:n] * [-1, 1, 1])
    np.testing.assert_allclose(ident.vectors[n:], ident.vectors[:n] * [-1, 1, 1] * (1 - asymmetry))
    pts = base.face_points
    u, mirror = displacement(pts, ident), displacement(pts * [-1, 1, 1], ident) * [-1, 1, 1]
    asym = np.sqrt(((u - mirror) ** 2).sum(axis=1).mean()) / np.sqrt((u ** 2).sum(axis=1).mean())
    # fully mirrored: exactly symmetric; otherwise the left-right difference grows with asymmetry
    assert asym < 1e-9 if asymmetry == 0.0 else 0.5 * asymmetry < asym < 2.0 * asymmetry
    plain = make_identity(base, np.random.default_rng(3), IdentityParams(face_fraction=1.0, asymmetry=1.0))
    assert len(plain.centres) == n, "asymmetry 1 draws independent bumps only (format 4's identities)"


@pytest.mark.parametrize("tilt", [0.0, 1.0])
def test_field_of_view_holds_the_head_it_is_centred_on(tilt):
    from defacebench.data.phantom.scanner import ScannerParams, draw_geometry

    rng = np.random.default_rng(2)
    p = ScannerParams(tilt_fraction=tilt, tilt_deg=(22.0, 22.0), fov_mm=(235.0, 235.0))
    for head_y in ((-100.0, 110.0), (-95.0, 135.0), (-120.0, 120.0)):
        geom = draw_geometry(rng, p, 90.0, head_y)
        a = geom.affine
        ys = [(a @ [0.0, j, 0.0, 1.0])[1] for j in (-0.5, geom.shape[1] - 0.5)]  # the slice's back and front edges
        assert min(ys) <= head_y[0] - p.fov_margin_mm + 1e-6 and max(ys) >= head_y[1] + p.fov_margin_mm - 1e-6
        assert abs(0.5 * sum(ys) - 0.5 * sum(head_y)) <= p.fov_jitter_mm + 1e-6
    fixed = draw_geometry(rng, ScannerParams(fov_centre_y=4.0, tilt_fraction=0.0), 90.0, (-95.0, 135.0))
    ys = [(fixed.affine @ [0.0, j, 0.0, 1.0])[1] for j in (-0.5, fixed.shape[1] - 0.5)]
    assert 0.5 * sum(ys) == pytest.approx(4.0), "a given centre stays where it is"


@pytest.mark.slow
@pytest.mark.parametrize("sample", ["default", "template"])
def test_seed_camera_finds_faces_on_the_16_subject_sample(sample):
    from defacebench.data.sample import SampleParams

    rates = seed_camera_rates(SampleParams() if sample == "default" else SampleParams.template())
    assert all(rates[name] >= SEED_FLOOR[sample][name] for name in rates), rates
