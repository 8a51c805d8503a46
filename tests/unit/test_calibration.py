"""Conformal field bands (surrogates.conformal: split- and cross-conformal) and their check on
test data (evaluation.calibration): quantile arithmetic, coverage near the nominal level, the
GP's own pointwise coverage, the model-file round trip, and no test data in the calibration."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from surroflow.evaluation.calibration import LEVELS, evaluate_uncertainty
from surroflow.io import open_dataset, write_dataset
from surroflow.reduction.pod import POD
from surroflow.stages import EXPECTED_INPUTS
from surroflow.surrogates import make_surrogate
from surroflow.surrogates.conformal import (Calibration, conformal_quantile, cross_conformal, field_scores,
                                            min_samples, scale_and_scores, split_conformal)
from surroflow.surrogates.reduced import ReducedModel

ROOT = Path(__file__).resolve().parents[2]
X_GRID = np.linspace(0.0, 1.0, 30)
TIMES = np.linspace(0.0, 1.0, 4)


# ------------------------------------------------------------------ quantile arithmetic
def test_conformal_quantile_is_the_ceil_n_plus_1_rank():
    s = np.arange(1.0, 20.0)                        # 19 scores: ceil(20 * 0.95) = 19 -> the largest
    assert conformal_quantile(s[::-1], 0.95) == 19.0
    assert math.isnan(conformal_quantile(s[:18], 0.95))   # 18: rank 19 > n
    assert conformal_quantile(np.arange(1.0, 101.0), 0.9) == 91.0   # ceil(101 * 0.9) = 91
    assert conformal_quantile(np.arange(1.0, 5.0), 0.5) == 3.0      # ceil(5 * 0.5) = 3
    assert conformal_quantile([3.0, np.nan, 1.0, 2.0], 0.5) == 2.0  # NaN scores dropped: n = 3, rank 2
    assert min_samples(0.95) == 19 and min_samples(0.99) == 99 and min_samples(0.5) == 1
    cal = Calibration({"u": np.ones((1, 3))}, np.arange(10.0), np.arange(10), 5, 0.1)
    assert math.isnan(cal.quantile(0.95)) and "needs at least 19" in cal.why_not(0.95)
    assert cal.quantile(0.5) == 5.0 and cal.why_not(0.5) == ""
    with pytest.raises(Exception, match="level"):
        conformal_quantile(s, 1.0)


def test_leave_one_out_scale_and_scores_by_hand():
    rng = np.random.default_rng(3)
    r = {"u": rng.normal(size=(6, 2, 5)), "v": 100 * rng.normal(size=(6, 2, 3))}
    w = {"u": np.full(5, 0.2), "v": np.ones(3)}
    scale, scores = scale_and_scores(r, w)
    for v in r:
        rms = np.sqrt((r[v] ** 2).mean(axis=0))
        np.testing.assert_allclose(scale[v], rms)         # the floor (1% of the RMS) is not active here
    i = 2
    expect = max(np.max(np.abs(r[v][i]) / np.sqrt(np.delete(r[v] ** 2, i, axis=0).mean(axis=0))) for v in r)
    assert scores[i] == pytest.approx(expect)
    # a point where every residual vanishes is floored, not divided by zero
    r0 = {"u": np.concatenate([rng.normal(size=(6, 1, 4)), np.zeros((6, 1, 1))], axis=2)}
    s0, sc0 = scale_and_scores(r0, {"u": np.ones(5)})
    assert s0["u"][0, -1] > 0 and np.all(np.isfinite(sc0))


def test_score_coverage_near_nominal_on_exchangeable_fields():
    """Exchangeable heteroscedastic, heavy-tailed residual fields: averaged over 20 calibration
    sets of 200 fields, the band covers the nominal fraction of new fields (one calibration set
    alone scatters by ~sqrt(p (1 - p) / 200), 0.035 at p = 0.5; the mean by ~0.008)."""
    rng = np.random.default_rng(0)
    sigma = 0.1 + np.sin(np.linspace(0, np.pi, 50)) ** 2          # the spread changes over the field

    def draw(n: int) -> dict[str, np.ndarray]:
        return {"u": rng.standard_t(5, size=(n, 1, 50)) * sigma * rng.uniform(0.5, 1.5, (n, 1, 1))}
    levels = (0.5, 0.8, 0.9, 0.95)
    cov = np.zeros(len(levels))
    for _ in range(20):
        scale, scores = scale_and_scores(draw(200), {"u": np.ones(50)})
        test_scores = field_scores(draw(1000), scale)
        cov += [np.mean(test_scores <= conformal_quantile(scores, p)) for p in levels]
    cov /= 20
    np.testing.assert_allclose(cov, levels, atol=0.03)


# ------------------------------------------------------------------ a reduced model
def fields(P: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``u(sample, time, x)`` rows: a smooth map plus a small noise the regressor cannot learn."""
    base = np.sin(np.pi * X_GRID[None, None] * (1 + P[:, None, :1])) * (1 + P[:, None, 1:] * TIMES[None, :, None])
    return (base + 0.02 * rng.normal(size=base.shape)).reshape(-1, X_GRID.size)


def rows(P: np.ndarray) -> np.ndarray:
    return np.column_stack([np.repeat(P, TIMES.size, axis=0), np.tile(TIMES, P.shape[0])])


def fitted(kind: str, n: int, seed: int = 0) -> tuple[ReducedModel, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.uniform(0, 1, (n, 2))
    X, U = rows(P), fields(P, rng)
    model = ReducedModel({"u": POD(rank=4, energy=None)}, make_surrogate(kind), formulation="pointwise")
    model.input_names, model.times_, model.time_dim_ = ["a", "b", "time"], TIMES, "time"
    model.space_ = {"u": {"dims": ("x",), "shape": (X_GRID.size,), "attrs": {"units": "m"}}}
    model.fit(X, {"u": U})
    return model, X, U, np.repeat(np.arange(n), TIMES.size)


@pytest.fixture(scope="module")
def linear_model():
    model, X, U, g = fitted("linear", 60)
    model.calibration_ = cross_conformal(model, X, {"u": U}, g, 6)
    return model


def test_cross_conformal_coverage_near_nominal_on_new_samples(linear_model):
    cal = linear_model.calibration_
    assert cal.reason == "" and cal.n == 60 and cal.n_folds == 6 and cal.scale["u"].shape == (TIMES.size, X_GRID.size)
    rng = np.random.default_rng(7)
    P = rng.uniform(0, 1, (600, 2))
    U = fields(P, rng)
    pred = linear_model.predict_fields(P)
    res = evaluate_uncertainty(linear_model, P, TIMES, {"u": U}, pred)
    cov = dict(zip(LEVELS, res.conformal_coverage))
    assert 0.85 <= cov[0.9] <= 0.99 and 0.9 <= cov[0.95] <= 1.0, cov
    assert math.isnan(cov[0.99])                       # 60 samples: no 99% band (needs 99)
    # the summary's width: 2 q ||s||_W / ||u_hat||_W, per test sample, by hand
    q = cal.quantile(0.95)
    w = linear_model.bases["u"].weights_
    num = 2 * q * np.sqrt(np.sum(cal.scale["u"] ** 2 * w))
    den = np.sqrt(np.einsum("itj,itj,j->i", pred["u"], pred["u"], w))
    assert res.summary()["interval_width_mean"] == pytest.approx(float(np.mean(num / den)))
    assert res.summary()["coverage_95"] == pytest.approx(float(np.mean(res.scores <= q)))
    assert math.isnan(res.summary()["gp_coverage_95_pointwise"])   # no std: GP columns NaN


def _new_samples(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = rng.uniform(0, 1, (n, 2))
    return P, fields(P, rng)


def test_split_conformal_coverage_is_nominal_on_new_samples():
    """A model fitted on 30 samples, calibrated on 150 new ones (no refit), covers close to the
    nominal fraction of 2,000 further samples.  Averaged over 20 calibration sets: one set alone scatters by ~sqrt(p (1 - p) / 150), 0.03 at
    0.8, the mean by ~0.007, the fixed test set adds ~0.009."""
    model, *_ = fitted("linear", 30)
    P, Ut = _new_samples(2000, 99)
    pred = model.predict_fields(P)
    levels = (0.8, 0.9, 0.95)
    cov = np.zeros(len(levels))
    for k in range(20):
        Pc, Uc = _new_samples(150, 100 + k)
        model.calibration_ = split_conformal(model, rows(Pc), {"u": Uc}, np.repeat(np.arange(150), TIMES.size),
                                             generation_seconds=3.0)
        assert model.calibration_.method == "split_conformal" and model.calibration_.n == 150
        res = evaluate_uncertainty(model, P, TIMES, {"u": Ut}, pred)
        cov += [dict(zip(LEVELS, res.conformal_coverage))[p] for p in levels]
    cov /= 20
    np.testing.assert_allclose(cov, levels, atol=0.03)
    assert res.summary()["calibration_method"] == "split_conformal" and res.summary()["n_calibration"] == 150
    # the band's cost includes its high-fidelity runs
    assert res.summary()["calibration_seconds"] == pytest.approx(3.0 + model.calibration_.seconds)


def test_split_conformal_never_refits_and_scores_the_deployed_model():
    model, X, U, g = fitted("linear", 30)
    before = model.predict(X)["u"].copy()

    def refuse(*a, **k):
        raise AssertionError("split-conformal calibration refitted the model")
    model.fit = refuse
    model.with_bases = refuse
    Pc, Uc = _new_samples(40, 5)
    cal = split_conformal(model, rows(Pc), {"u": Uc}, np.repeat(np.arange(40), TIMES.size), samples=np.arange(40) + 7)
    np.testing.assert_array_equal(model.predict(X)["u"], before)
    # its scores are the leave-one-out scores of the deployed model's residuals, by hand
    r = {"u": (Uc - model.predict(rows(Pc))["u"]).reshape(40, TIMES.size, -1)}
    scale, scores = scale_and_scores(r, {"u": model.bases["u"].weights_})
    np.testing.assert_array_equal(cal.scores, scores)
    np.testing.assert_array_equal(cal.scale["u"], scale["u"])
    assert list(cal.samples) == list(range(7, 47)) and cal.n_folds == 0
    one = split_conformal(model, rows(Pc[:1]), {"u": Uc[:TIMES.size]}, np.zeros(TIMES.size, int))
    assert "1 calibration sample" in one.why_not()
    with pytest.raises(Exception, match="times"):
        split_conformal(model, rows(Pc)[:-2], {"u": Uc[:-2]}, np.repeat(np.arange(40), TIMES.size)[:-2])


def test_folds_refit_the_bases_at_the_same_rank(linear_model, monkeypatch):
    from surroflow.surrogates import conformal
    seen = []
    original = conformal._fold_pod

    def spy(b, S):
        pod = original(b, S)
        seen.append((pod.n_modes_, S.shape[0], pod is b))
        return pod
    monkeypatch.setattr(conformal, "_fold_pod", spy)
    model, X, U, g = fitted("linear", 24)
    cross_conformal(model, X, {"u": U}, g, 4)
    assert [s[0] for s in seen] == [4] * 4 and all(s[1] == 18 * TIMES.size for s in seen)
    assert not any(s[2] for s in seen)


def test_too_few_samples_or_no_folds_give_nan_with_reason():
    model, X, U, g = fitted("linear", 12)
    cal = cross_conformal(model, X, {"u": U}, g, 4)
    assert math.isnan(cal.quantile(0.95)) and "needs at least 19" in cal.why_not()
    off = cross_conformal(model, X, {"u": U}, g, 0)
    assert "calibration_folds is 0" in off.why_not()
    model.calibration_ = off
    res = evaluate_uncertainty(model, X[::TIMES.size, :2], TIMES, {"u": U}, model.predict_fields(X[::TIMES.size, :2]))
    assert math.isnan(res.summary()["coverage_95"]) and "calibration_folds is 0" in res.conformal_reason


def test_gp_pointwise_coverage_equals_an_independent_count():
    model, X, U, g = fitted("gaussian_process", 30)
    rng = np.random.default_rng(11)
    P = rng.uniform(0, 1, (8, 2))
    Ut = fields(P, rng)
    res = evaluate_uncertainty(model, P, TIMES, {"u": Ut}, model.predict_fields(P))
    mean, std = model.predict(rows(P), return_std=True)           # the row path, not predict_fields
    inside = np.abs(Ut - mean["u"]) <= 1.959963984540054 * std["u"]
    expect = inside.reshape(8, -1).mean(axis=1)
    k = LEVELS.index(0.95)
    np.testing.assert_allclose(res.gp_pointwise[:, k], expect)
    assert res.summary()["gp_coverage_95_pointwise"] == pytest.approx(float(expect.mean()))
    proj = model.bases["u"].project(Ut)                            # the target the std describes
    in_basis = (np.abs(proj - mean["u"]) <= 1.959963984540054 * std["u"]).reshape(8, -1).mean(axis=1)
    assert res.summary()["gp_coverage_95_pointwise_in_basis"] == pytest.approx(float(in_basis.mean()))
    err = np.sqrt(((Ut - mean["u"]) ** 2 * model.bases["u"].weights_).reshape(8, -1).sum(axis=1))
    sd = np.sqrt((std["u"] ** 2 * model.bases["u"].weights_).reshape(8, -1).sum(axis=1))
    assert res.summary()["gp_std_error_ratio"] == pytest.approx(float(np.median(sd / err)))


def test_model_file_round_trip_keeps_scale_and_scores(linear_model, tmp_path):
    path = tmp_path / "m.nc"
    write_dataset(linear_model.to_dataset({"stage": "train_surrogate"}), path)
    ds = open_dataset(path)
    assert ds["calibration_scale__u"].dims == ("time", "x")
    back = ReducedModel.from_dataset(ds)
    a, b = linear_model.calibration_, back.calibration_
    np.testing.assert_array_equal(b.scale["u"], a.scale["u"])
    np.testing.assert_array_equal(b.scores, a.scores)
    assert b.quantile(0.95) == a.quantile(0.95) == pytest.approx(float(ds.attrs["calibration_quantile"]))
    assert b.n_folds == 6 and b.seconds == pytest.approx(a.seconds) and b.method == "cross_conformal"
    # a split-conformal band keeps its method and the cost of its high-fidelity runs
    model, X, U, g = fitted("linear", 20)
    Pc, Uc = _new_samples(25, 3)
    model.calibration_ = split_conformal(model, rows(Pc), {"u": Uc}, np.repeat(np.arange(25), TIMES.size),
                                         generation_seconds=12.5)
    write_dataset(model.to_dataset({"stage": "train_surrogate"}), tmp_path / "s.nc")
    ds_s = open_dataset(tmp_path / "s.nc")
    assert ds_s.attrs["calibration"] == "split_conformal"
    back_s = ReducedModel.from_dataset(ds_s).calibration_
    assert back_s.method == "split_conformal" and back_s.generation_seconds == 12.5 and back_s.n == 25
    np.testing.assert_array_equal(back_s.scores, model.calibration_.scores)
    # a model file without calibration loads with none
    linear_model_copy = ReducedModel.from_dataset(ds)
    linear_model_copy.calibration_ = None
    assert ReducedModel.from_dataset(linear_model_copy.to_dataset()).calibration_ is None


def test_no_test_data_reach_the_calibration(monkeypatch):
    """train_surrogate has no test input (lineage and the rule: its calibration input must be the
    calibration split), and the calibration reads no file: it sees only the rows it is given."""
    expected = EXPECTED_INPUTS["train_surrogate"]
    assert set(expected) == {"train", "bases", "calibration"} and expected["calibration"].split == "calibration"
    rule = (ROOT / "workflow" / "rules" / "train.smk").read_text()
    block = re.search(r"rule train_surrogate:(.*?)\nrule ", rule, re.S).group(1)
    assert "test" not in block.split("output:")[0]
    model, X, U, g = fitted("linear", 20)

    def refuse(*a, **k):
        raise AssertionError("the calibration opened a file")
    monkeypatch.setattr(xr, "open_dataset", refuse)
    monkeypatch.setattr("builtins.open", refuse)
    cal = cross_conformal(model, X, {"u": U}, g, 4)
    assert cal.n == 20 and np.array_equal(cal.samples, np.arange(20))
