"""Designs of experiments over a simulator's parameters (scipy.stats.qmc), seeded.

A design is the Dataset ``design(sample, parameter)`` with the parameter names as coordinate
and ``units``/bounds as attributes.  Train and test designs are either drawn separately (two
independent seeded designs: the test design never shares a point with the training one by
construction) or one design split by sample with a seeded permutation, never by time step.

An optional third split, ``calibration`` (``design.n_calibration`` samples, 0 by default), is
drawn like the test design (its method, its own seed stream; or the third part of the
permutation) but belongs to the training budget: the conformal band is calibrated on it
(:func:`surroflow.surrogates.conformal.split_conformal`), and it never enters a basis or a
regressor.  With 0 samples its design is empty and nothing runs it.

**Members** (``design.members = m``, stochastic simulators): every split's ``n`` parameter points
are each run ``m`` times, as ``n * m`` samples (point-major), with the coordinates
``point(sample)`` (index of the parameter point in the split), ``member(sample)`` and
``noise_seed(sample)`` (a distinct seed per point and member, hashed from the split's seed): the
realisations of one point differ only by the simulator's internal variability.  The evaluation
then scores models against ensemble means as well as single members.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from . import SurroflowError
from .simulators.base import NOISE_SEED, Parameter, seed_from_entropy
from .snapshots import SPLITS   # also the order of the joint permutation of split: random

METHODS = ("sobol", "lhs", "grid", "random")


def unit_design(method: str, n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points in ``[0, 1]^d``."""
    # scipy.stats is 2 s of import: only the job that draws a design pays it
    from scipy.stats import qmc

    if n < 1:
        raise SurroflowError(f"design: n must be >= 1, got {n}")
    if method == "sobol":
        sampler = qmc.Sobol(d=d, scramble=True, rng=np.random.default_rng(seed))
        m = int(np.ceil(np.log2(max(n, 1))))
        return sampler.random_base2(m)[:n]
    if method == "lhs":
        return qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(n)
    if method == "random":
        return np.random.default_rng(seed).random((n, d))
    if method == "grid":
        per_axis = int(round(n ** (1.0 / d)))
        if per_axis ** d != n:
            raise SurroflowError(f"design.method=grid needs n to be a perfect power of the "
                                 f"number of parameters ({d}); got n={n}")
        axes = [np.linspace(0.0, 1.0, per_axis)] * d
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)
    raise SurroflowError(f"design.method={method!r} is not allowed; allowed: {list(METHODS)}")


def scale(unit: np.ndarray, params: Sequence[Parameter]) -> np.ndarray:
    out = np.empty_like(unit)
    for j, p in enumerate(params):
        if p.log_scale:
            out[:, j] = np.exp(np.log(p.low) + unit[:, j] * (np.log(p.high) - np.log(p.low)))
        else:
            out[:, j] = p.low + unit[:, j] * (p.high - p.low)
    return out


def unscale(values: np.ndarray, params: Sequence[Parameter]) -> np.ndarray:
    """The inverse of :func:`scale`: parameter values to the unit cube (log axis for a
    log-scaled parameter)."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for j, p in enumerate(params):
        if p.log_scale:
            out[:, j] = (np.log(values[:, j]) - np.log(p.low)) / (np.log(p.high) - np.log(p.low))
        else:
            out[:, j] = (values[:, j] - p.low) / (p.high - p.low)
    return out


def check_ranges(declared: Sequence[Parameter], ranges: Mapping[str, Sequence[float]] | None) -> list[str]:
    """Every problem of the ``simulator.parameters`` ranges, one line each naming
    ``simulator.parameters.<name>`` and what is allowed: a name the simulator does not declare,
    bounds that are not two finite numbers with low < high, a log-scaled parameter whose low
    bound is not > 0."""
    by_name = {p.name: p for p in declared}
    out = []
    for name, bounds in (ranges or {}).items():
        where = f"simulator.parameters.{name}"
        if name not in by_name:
            out.append(f"{where}: unknown parameter; allowed: {sorted(by_name)}")
            continue
        base = by_name[name]
        declared_range = f"declared range [{base.low:g}, {base.high:g}] {base.units}".rstrip()
        try:
            lo, hi = (float(b) for b in bounds)
        except (TypeError, ValueError):
            out.append(f"{where}: {bounds!r} is not allowed; expected [low, high], two numbers ({declared_range})")
            continue
        if not (np.isfinite(lo) and np.isfinite(hi)):
            out.append(f"{where}: [{lo}, {hi}] is not allowed; both bounds must be finite ({declared_range})")
        elif not lo < hi:
            out.append(f"{where}: [{lo}, {hi}] is not allowed; low must be < high ({declared_range})")
        elif base.log_scale and lo <= 0:
            out.append(f"{where}: [{lo}, {hi}] is not allowed; {name} is sampled on a log scale, which "
                       f"needs low > 0 ({declared_range})")
    return out


def resolve_parameters(declared: Sequence[Parameter], ranges: Mapping[str, Sequence[float]] | None
                       ) -> list[Parameter]:
    """Parameters to vary: those named in ``ranges`` (with overridden bounds), else all declared;
    in the simulator's declared order whatever the order of ``ranges`` (a YAML mapping has none,
    and the config hash ignores it: the design's columns, hence its points, must not depend on
    it).  Bad ranges are a :class:`SurroflowError` listing every problem (:func:`check_ranges`)."""
    if not ranges:
        return list(declared)
    problems = check_ranges(declared, ranges)
    if problems:
        raise SurroflowError("; ".join(problems))
    return [Parameter(p.name, float(ranges[p.name][0]), float(ranges[p.name][1]), p.units, p.long_name, p.log_scale)
            for p in declared if p.name in ranges]


#: offset between the seed streams of the separate splits (a prime: train seed, test seed +
#: offset, calibration seed + 2 offset never coincide by design)
SEED_STREAM = 104729


def make_design(params: Sequence[Parameter], method: str, n: int, seed: int,
                split: str = "train") -> xr.Dataset:
    if n == 0:      # an empty split (no calibration design): nothing is drawn
        return design_dataset(np.zeros((0, len(params))), params, split, method, seed)
    unit = unit_design(method, n, len(params), seed)
    values = scale(unit, params)
    return design_dataset(values, params, split, method, seed)


def design_dataset(values: np.ndarray, params: Sequence[Parameter], split: str, method: str,
                   seed: int, sample_ids: np.ndarray | None = None) -> xr.Dataset:
    """A design dataset ``design(sample, parameter)`` of the points ``values`` (module docstring)."""
    n = values.shape[0]
    ds = xr.Dataset(
        {"design": (("sample", "parameter"), values,
                    {"long_name": "parameter values of each design point"})},
        coords={
            "sample": ("sample", np.arange(n) if sample_ids is None else sample_ids,
                       {"long_name": "sample index within the split"}),
            "parameter": ("parameter", np.array([p.name for p in params], dtype=object)),
            "parameter_units": ("parameter", np.array([p.units for p in params], dtype=object)),
            "parameter_low": ("parameter", np.array([p.low for p in params])),
            "parameter_high": ("parameter", np.array([p.high for p in params])),
        },
        attrs={"split": split, "design_method": method, "design_seed": seed},
    )
    return ds


def train_test_designs(params: Sequence[Parameter], cfg: Mapping[str, Any]) -> dict[str, xr.Dataset]:
    """Train, test and calibration designs from a study's validated ``design`` section (schema
    defaults filled); the calibration design is empty when ``n_calibration`` is 0."""
    missing = [k for k in ("method", "test_method", "n_train", "n_test", "seed", "split") if k not in cfg]
    if missing:
        raise SurroflowError(f"design: keys {missing} missing; pass the validated design section "
                             "(surroflow.config fills the schema defaults)")
    members = int(cfg.get("members", 1))
    return {split: with_members(ds, members) for split, ds in _point_designs(params, cfg).items()}


def _point_designs(params: Sequence[Parameter], cfg: Mapping[str, Any]) -> dict[str, xr.Dataset]:
    method = cfg["method"]
    seed = int(cfg["seed"])
    n = {"train": int(cfg["n_train"]), "test": int(cfg["n_test"]), "calibration": int(cfg.get("n_calibration", 0))}
    if cfg["split"] == "separate":
        test_method = cfg["test_method"] or ("random" if method == "grid" else method)
        # a seed stream per split, so no two coincide by design; calibration drawn like the test
        return {split: make_design(params, method if split == "train" else test_method, n[split],
                                   seed + k * SEED_STREAM, split) for k, split in enumerate(SPLITS)}
    total = sum(n.values())
    full = make_design(params, method, total, seed, "all")
    perm = np.random.default_rng(seed).permutation(total)
    values = full["design"].values
    out = {}
    start = 0
    for split in SPLITS:
        idx = np.sort(perm[start:start + n[split]])
        start += n[split]
        out[split] = design_dataset(values[idx], params, split, method, seed)
        out[split]["source_index"] = ("sample", idx, {"long_name": "index in the joint design"})
    return out


def with_members(ds: xr.Dataset, members: int) -> xr.Dataset:
    """The design ``ds`` with each point repeated ``members`` times (point-major) and the
    coordinates ``point``, ``member`` and ``noise_seed`` on ``sample`` (module docstring);
    ``members == 1`` returns ``ds`` unchanged."""
    m = int(members)
    if m < 1:
        raise SurroflowError(f"design.members must be >= 1, got {members}")
    if m == 1:
        return ds
    n = ds.sizes["sample"]
    point, member = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    if ds.attrs.get("split") not in SPLITS:
        raise SurroflowError(f"design split {ds.attrs.get('split')!r} is not one of {list(SPLITS)}")
    base = [int(ds.attrs["design_seed"]), SPLITS.index(ds.attrs["split"])]
    seeds = np.array([seed_from_entropy([*base, p, k]) for p, k in zip(point, member)], dtype=np.int64)
    out = ds.isel(sample=point)
    out = out.assign_coords(
        sample=("sample", np.arange(n * m), {"long_name": "sample index within the split"}),
        point=("sample", point, {"long_name": "parameter point of the sample (members share it)"}),
        member=("sample", member, {"long_name": "realisation of the point (internal variability)"}),
        noise_seed=("sample", seeds, {"long_name": "seed of the simulator's noise for this member"}))
    out.attrs["members"] = m
    return out


def members_of(ds: xr.Dataset) -> int:
    """Realisations per parameter point of a design or generate dataset (1 without members;
    flagged samples left out of ``ds`` leave fewer at some points: the most)."""
    if "point" not in ds.coords or ds.sizes["sample"] == 0:
        return 1
    return int(np.unique(ds["point"].values, return_counts=True)[1].max())


def design_records(ds: xr.Dataset) -> list[dict[str, float | int]]:
    """One ``{parameter: value}`` per sample, with the member's ``noise_seed`` when it has one."""
    names = [str(p) for p in ds["parameter"].values]
    records = [dict(zip(names, map(float, row))) for row in ds["design"].values]
    if NOISE_SEED in ds.coords:
        for rec, seed in zip(records, ds[NOISE_SEED].values):
            rec[NOISE_SEED] = int(seed)
    return records
