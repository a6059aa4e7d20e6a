"""Reconstructing a removed face before recognizing it: the ``refill`` attacker's two reconstructors.

The attacker holds a *population*: other people's scans, undefaced, and the same scans defaced by
the tool under test (the attacker runs the tool itself, as in the ``aware`` scenario). It never holds
the target's own scans: the caller passes only other subjects (:func:`population_ids`), and the
reconstructions are pure functions of what they are given. Everything happens on frontal depth maps
in a head frame (:mod:`defacebench.attacks.depthmap`):

1. **Removed region** (what the attacker can see): pixels where the tool removes skin in the
   population (its removal zone: the defaced population's depth falls short of the undefaced one)
   and where the target, after its depth map is registered to the population mean on the pixels
   outside that zone, is air (or fill) by more than ``tolerance_mm`` where the population has skin.
   The defacer's own mask file is never read. On an undefaced scan the region is empty.
2. **Reconstruction** of the region's depths:

   * ``template`` (template transplant): the population's mean head (other subjects, each aligned
     by its head frame) registered to the target on the surviving anatomy, its face copied into the
     region;
   * ``learned``: PCA of the population's *defaced* depth maps and a ridge regression from them to
     the *undefaced* maps (sklearn), i.e. a map from what this tool leaves to what it removed; it
     learns how the face co-varies with what survives (head width, forehead, cut outline).
3. **Blending**: the reconstruction is shifted by a smooth residual field (Gaussian-weighted
   mean of target minus reconstruction on the surviving pixels around the region, ``blend_mm``), so
   the new skin meets the old at the border; it never carves into remaining tissue.
4. **Write-back**: voxels between the remaining tissue and the reconstructed skin, inside the region,
   become soft tissue (the target's median value under the skin), so any renderer sees the face.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from defacebench.attacks.depthmap import DepthMap, MapParams, frame_axes
from defacebench.contracts import Volume
from defacebench.errors import DefacebenchError

METHODS = ("template", "learned")


class RefillError(DefacebenchError, ValueError):
    """A reconstruction cannot be made (unknown method, population too small)."""


@dataclass(frozen=True)
class RefillParams:
    """How the attacker reconstructs (recorded in the results). ``zone_share``: share of the
    population in which the tool removed a pixel for it to be in the tool's removal zone."""

    method: str = "learned"
    maps: MapParams = field(default_factory=MapParams)
    tolerance_mm: float = 3.0
    zone_share: float = 0.25
    close_px: int = 3
    min_region_px: int = 20
    blend_mm: float = 8.0
    n_components: int = 8
    ridge_log10_alphas: tuple[float, float, int] = (0.0, 9.0, 19)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise RefillError(f"refill method {self.method!r} is unknown: use one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class Population:
    """The attacker's population: depth maps of other subjects, undefaced and defaced by the tool
    (same order), and their subject ids (kept so a test can prove the target is absent)."""

    ids: tuple[str, ...]
    undefaced: tuple[DepthMap, ...]
    defaced: tuple[DepthMap, ...]


def population_ids(subject_ids: Sequence[str], target: str) -> tuple[str, ...]:
    """Leave-subject-out: every subject but the target (all of the target's acquisitions go with it)."""
    return tuple(s for s in subject_ids if s != target)


def _stack(maps: Sequence[DepthMap]) -> np.ndarray:
    return np.stack([m.depth for m in maps]).astype(np.float64)


def _mean(maps: Sequence[DepthMap]) -> np.ndarray:
    """Per-pixel mean depth over the maps that reach the pixel (NaN where none does)."""
    depths = _stack(maps)
    hits = np.isfinite(depths).sum(axis=0)
    return np.where(hits > 0, np.nansum(depths, axis=0) / np.maximum(hits, 1), np.nan)


def removal_zone(population: Population, params: RefillParams) -> np.ndarray:
    """Pixels where the tool removed skin in at least ``zone_share`` of the population."""
    und, dfc = _stack(population.undefaced), _stack(population.defaced)
    removed = np.isfinite(und) & ~(np.nan_to_num(dfc, nan=0.0) >= und - params.tolerance_mm)
    return removed.mean(axis=0) >= params.zone_share


def removed_region(target: DepthMap, population: Population, params: RefillParams) -> np.ndarray:
    """The target's removed pixels (see the module docstring), small specks dropped."""
    from scipy import ndimage

    mean = _mean(population.undefaced) if population.ids else None
    zone = removal_zone(population, params)
    if mean is None or not zone.any():
        return np.zeros(target.depth.shape, bool)
    both = np.isfinite(mean) & np.isfinite(target.depth) & ~zone
    offset = float(np.median(target.depth[both] - mean[both])) if both.any() else 0.0
    deficit = np.nan_to_num(mean + offset, nan=-np.inf) - np.nan_to_num(target.depth, nan=0.0)
    region = zone & (deficit > params.tolerance_mm)
    # the cut's own relief (exposed cavities, a ragged edge) leaves specks of "surviving" skin inside
    # a removal: close them, so the region is one piece the reconstruction can be blended around
    region = ndimage.binary_fill_holes(ndimage.binary_closing(region, iterations=params.close_px)) & zone
    labels, n = ndimage.label(region)
    sizes = ndimage.sum(region, labels, index=np.arange(1, n + 1))
    return np.isin(labels, 1 + np.flatnonzero(sizes >= params.min_region_px))


def predict_template(target: DepthMap, population: Population, params: RefillParams) -> np.ndarray:
    """The population's mean undefaced depth map (the blend registers it to the target)."""
    return _mean(population.undefaced)


def predict_learned(target: DepthMap, population: Population, params: RefillParams) -> np.ndarray:
    """PCA of the defaced population maps + ridge to the undefaced maps, applied to the target."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    x = np.nan_to_num(_stack(population.defaced), nan=0.0).reshape(len(population.ids), -1)
    y = np.nan_to_num(_stack(population.undefaced), nan=0.0).reshape(len(population.ids), -1)
    k = max(1, min(params.n_components, len(population.ids) - 1))
    # the penalty is chosen by leave-one-out over the population (RidgeCV's efficient LOO): with few
    # people a strong penalty falls back towards the mean face, a weak one trusts the covariation
    alphas = np.logspace(*params.ridge_log10_alphas)
    model = make_pipeline(PCA(n_components=k, svd_solver="full"), RidgeCV(alphas=alphas))
    model.fit(x, y)
    guess = model.predict(np.nan_to_num(target.depth, nan=0.0).reshape(1, -1)).reshape(target.depth.shape)
    return np.where(guess > params.maps.pixel_mm, guess, np.nan)


def blend(target: DepthMap, guess: np.ndarray, region: np.ndarray, params: RefillParams) -> np.ndarray:
    """The guess inside ``region`` shifted by the smooth residual (target - guess) of the surviving
    pixels around it; never behind the remaining skin. NaN outside the region."""
    from scipy import ndimage

    sigma = params.blend_mm / params.maps.pixel_mm
    known = np.isfinite(target.depth) & np.isfinite(guess) & ~region
    residual = np.where(known, target.depth - np.nan_to_num(guess), 0.0)
    weight = ndimage.gaussian_filter(known.astype(float), sigma, mode="constant")
    field_ = ndimage.gaussian_filter(residual, sigma, mode="constant") / np.maximum(weight, 1e-6)
    # far from any surviving pixel the weight is tiny: fall back to the region's border median shift
    border = known & ndimage.binary_dilation(region, iterations=max(1, round(2 * sigma)))
    fallback = float(np.median(residual[border])) if border.any() else 0.0
    field_ = np.where(weight > 1e-3, field_, fallback)
    out = np.where(region & np.isfinite(guess), guess + field_, np.nan)
    return np.fmax(out, np.where(region, target.depth, np.nan))


def reconstruct(target: DepthMap, population: Population, params: RefillParams) -> tuple[np.ndarray, np.ndarray]:
    """(region, new depth in the region, NaN elsewhere) for the target under ``params.method``."""
    if len(population.ids) < 2:
        raise RefillError(f"refill needs a population of at least 2 other subjects, got {len(population.ids)}")
    region = removed_region(target, population, params)
    if not region.any():
        return region, np.full(region.shape, np.nan)
    predict = predict_template if params.method == "template" else predict_learned
    return region, blend(target, predict(target, population, params), region, params)


def write_back(volume: Volume, target: DepthMap, new_depth: np.ndarray, params: MapParams) -> Volume:
    """The volume with soft tissue (``target.tissue``) from the remaining tissue up to the new skin
    on every ray of the reconstructed region (bilinear in the map, so the skin is smooth)."""
    from scipy import ndimage

    u, v, _ = frame_axes(params)
    data = np.array(volume.data, dtype=np.float32, copy=True)
    skin = np.nan_to_num(new_depth, nan=-1.0)
    floor = np.nan_to_num(np.where(np.isfinite(new_depth), target.depth, np.nan), nan=0.0)
    ii, jj = np.meshgrid(np.arange(data.shape[0]), np.arange(data.shape[1]), indexing="ij")
    for k in range(data.shape[2]):
        world = volume.affine[:3, :3] @ np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)]) \
            + volume.affine[:3, 3:4]
        fu = (world[0] - target.origin[0] - u[0]) / params.pixel_mm
        fv = (target.origin[2] - world[2] - v[0]) / params.pixel_mm
        w = world[1] - target.origin[1]
        top = ndimage.map_coordinates(skin, [fv, fu], order=1, mode="constant", cval=-1.0)
        bottom = ndimage.map_coordinates(floor, [fv, fu], order=0, mode="constant", cval=0.0)
        fill = (top > 0) & (w <= top) & (w >= bottom - params.pixel_mm)
        plane = data[:, :, k].reshape(-1)
        plane[fill & (plane <= target.level)] = target.tissue
        data[:, :, k] = plane.reshape(ii.shape)
    return replace(volume, data=data)

