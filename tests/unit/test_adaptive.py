"""Adaptive sampling (surroflow.adaptive): the indicators on an analytic field with a sharp
feature, the leave-one-out errors, the batch selection, the stopping rule and the runs-to-target
interpolation; the config checks of design.adaptive."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.adaptive.indicators import (RoundFit, TrainingSet, idw, make_indicator, sample_errors,
                                           select_batch, spacing, stopping_estimate)
from surroflow.adaptive.files import runs_to_reach
from surroflow.adaptive.rounds import run_round
from surroflow.adaptive.schedule import round_view
from surroflow.config import stage_sections, validate_config
from surroflow.design import scale, unit_design, unscale
from surroflow.reduction.pod import POD
from surroflow.simulators.base import Parameter
from surroflow.surrogates.reduced import ReducedModel
from surroflow.surrogates.registry import make_estimator

GRID = np.linspace(0.0, 1.0, 64)
REDUCTION = {"method": "exact", "rank": None, "energy": 0.999999, "oversampling": 10, "power_iterations": 2,
             "seed": 0, "chunk_snapshots": 4096}
#: the sharp feature: a step in p0 of width 0.03 at 0.7
EDGE, WIDTH = 0.7, 0.03


def field(p: np.ndarray) -> np.ndarray:
    """A field linear in p0 with a sharp change at p0 = EDGE (rows of p -> rows of fields)."""
    p = np.atleast_2d(p)
    step = np.tanh((p[:, :1] - EDGE) / WIDTH)
    return 1.0 + 0.3 * p[:, :1] * np.sin(2 * np.pi * GRID) + 0.5 * step * np.cos(3 * np.pi * GRID)


def training(points: np.ndarray, f=field) -> TrainingSet:
    n = points.shape[0]
    return TrainingSet(X=points, S={"u": f(points)}, groups=np.arange(n), unit=points,
                       weights={"u": np.full(GRID.size, 1.0 / GRID.size)})


def round_fit(points: np.ndarray, kind: str = "gaussian_process", folds: int = 0) -> RoundFit:
    template = ReducedModel({"u": POD()}, make_estimator(kind, {}, "surrogate"))
    return RoundFit(template, training(points), REDUCTION, folds=folds, seed=0)


def _rounds(indicator: str, kind: str, n_rounds: int = 4, per_round: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``n_rounds`` rounds from 6 Sobol points on [0, 1]; (all points, the chosen ones)."""
    cu = unit_design("sobol", 512, 1, 11)
    pts = unit_design("sobol", 6, 1, 3)
    chosen = []
    for r in range(n_rounds):
        fit = round_fit(pts, kind)
        view = round_view(_adaptive(indicator, per_round=per_round, initial=6), r)
        assert view["n_hf"] == pts.shape[0]
        res = run_round(fit.template, fit.data, REDUCTION, view, cu, cu)
        assert not res.stop and res.selected.size == per_round
        chosen.append(cu[res.selected])
        pts = np.vstack([pts, chosen[-1]])
    return pts, np.vstack(chosen)


def _adaptive(indicator: str, **over):
    return {"folds": 0, "seed": 0, "budget": 40, "per_round": 4, "max_rounds": 10, "target_error": 1e-9,
            "indicator": indicator, "indicator_params": {}, "metric": "mean", "estimate": "cross_validation", **over}


@pytest.mark.parametrize("indicator", ["cross_validation", "committee"])
def test_error_indicators_put_the_points_on_the_sharp_feature(indicator):
    """Four rounds of 2 points: at least 40% of the chosen points lie within 0.1 of the step
    (a uniform design puts 20% there), and no point is chosen twice."""
    pts, chosen = _rounds(indicator, "rbf")
    near = np.abs(chosen[:, 0] - EDGE) < 0.1
    assert near.mean() >= 0.4, (indicator, np.sort(chosen[:, 0]))
    assert len({tuple(p) for p in pts}) == pts.shape[0]


def test_gp_std_fills_the_largest_gaps_of_the_design():
    """A stationary GP's predictive std depends on where the points are, not on the field: it
    picks the candidates farthest from the design (blind to a feature between the points)."""
    from surroflow.adaptive.indicators import nearest_distance
    cu = unit_design("sobol", 512, 1, 11)
    pts = unit_design("sobol", 6, 1, 3)
    fit = round_fit(pts)
    scores = make_indicator("gp_std").scores(fit, cu, cu)
    gap = nearest_distance(pts, cu)
    best = np.argsort(scores)[-5:]
    assert np.all(gap[best] > np.median(gap))
    assert np.corrcoef(scores, gap)[0, 1] > 0.5
    assert np.all(scores[gap < 1e-6] < 1e-3 * scores.max())   # at a training point: no uncertainty


def test_leave_one_out_errors_are_those_of_refits_without_each_sample():
    pts = unit_design("sobol", 8, 1, 5)
    fit = round_fit(pts, kind="linear", folds=0)
    cv = fit.cv_errors()
    for i in range(8):
        keep = np.delete(np.arange(8), i)
        model = fit.fit(keep)
        e = sample_errors(model, pts[i:i + 1], {"u": field(pts[i:i + 1])}, np.array([0]))
        assert cv[i] == pytest.approx(float(e[0]), rel=1e-10)
    assert np.all(cv > 0)


def test_stopping_estimate_tracks_the_test_error_on_a_smooth_field():
    """On a smooth field the leave-one-out estimate over the candidate pool is an upper bound of
    the mean error on an independent test design, within a factor 10 (each refit has one sample
    fewer; on the Burgers study it was within 1.4-1.8x)."""
    pts = unit_design("sobol", 16, 2, 1)
    test = unit_design("random", 200, 2, 99)
    smooth = lambda p: 1.0 + np.atleast_2d(p)[:, 1:2] * np.sin(2 * np.pi * GRID) + \
        0.3 * np.atleast_2d(p)[:, :1] ** 2 * np.cos(np.pi * GRID)   # noqa: E731
    data = TrainingSet(X=pts, S={"u": smooth(pts)}, groups=np.arange(16), unit=pts,
                       weights={"u": np.full(GRID.size, 1.0 / GRID.size)})
    fit = RoundFit(ReducedModel({"u": POD()}, make_estimator("gaussian_process", {}, "surrogate")), data, REDUCTION)
    true = np.mean(sample_errors(fit.fitted(), test, {"u": smooth(test)}, np.arange(200)))
    pool = unit_design("sobol", 512, 2, 7)
    est, calibration = stopping_estimate(fit, pool, pool)
    assert 1.0 <= est / true <= 10.0, (est, true)
    assert math.isnan(calibration)


def wave(p: np.ndarray) -> np.ndarray:
    """A smooth field that varies over the whole square (rows of p -> rows of fields)."""
    p = np.atleast_2d(p)
    return (1.0 + np.sin(3 * p[:, :1] + 2 * p[:, 1:2]) * np.sin(2 * np.pi * GRID)
            + 0.5 * np.cos(4 * p[:, 1:2]) * np.cos(np.pi * GRID))


def _smooth_round(n: int = 24, smooth=wave):
    pts = unit_design("sobol", n, 2, 1)
    data = TrainingSet(X=pts, S={"u": smooth(pts)}, groups=np.arange(n), unit=pts,
                       weights={"u": np.full(GRID.size, 1.0 / GRID.size)})
    return RoundFit(ReducedModel({"u": POD()}, make_estimator("gaussian_process", {}, "surrogate")), data,
                    REDUCTION, folds=0), smooth


def test_std_calibration_is_the_median_ratio_of_leave_one_out_error_to_the_fold_std():
    fit, _ = _smooth_round(10)
    from surroflow.adaptive.indicators import GPStd, std_calibration
    stds = fit.cv_stds()
    for i in (0, 7):   # the fold model without sample i, its relative std at sample i
        keep = np.delete(np.arange(10), i)
        alone = GPStd().scores(type("F", (), {"fitted": lambda self, m=fit.fit(keep): m})(),
                               fit.data.unit[i:i + 1], fit.data.unit[i:i + 1])
        assert stds[i] == pytest.approx(alone[0], rel=1e-6)
    assert std_calibration(fit) == pytest.approx(np.median(fit.cv_errors() / stds))
    linear = RoundFit(ReducedModel({"u": POD()}, make_estimator("linear", {}, "surrogate")), fit.data, REDUCTION)
    with pytest.raises(SurroflowError, match="predictive std"):
        linear.cv_stds()


@pytest.mark.parametrize("metric", ["mean", "max"])
def test_calibrated_std_estimate_is_within_a_factor_two_of_the_test_error(metric):
    """On a smooth field the gp_std estimate (the GP std over the pool times the leave-one-out
    calibration) lands within 2x of the mean and of the largest error of 24 Sobol runs on an
    independent test design, and the mean is closer than the raw leave-one-out estimate (3.9x
    above: each held-out sample sits in a hole).  Not on a sharp step: a stationary GP's std
    does not see it (4-7x below there), which is why the estimate is a setting."""
    fit, smooth = _smooth_round()
    test = unit_design("random", 200, 2, 99)
    errors = sample_errors(fit.fitted(), test, {"u": smooth(test)}, np.arange(200))
    true = {"mean": np.mean, "max": np.max}[metric](errors)
    pool = unit_design("sobol", 512, 2, 7)
    est, calibration = stopping_estimate(fit, pool, pool, metric, "gp_std", n_design=200)
    assert 0.5 <= est / true <= 2.0, (metric, est, true, calibration)
    assert calibration > 0
    if metric == "mean":
        raw, _ = stopping_estimate(fit, pool, pool, metric, "cross_validation")
        assert abs(math.log(est / true)) < abs(math.log(raw / true)), (est, raw, true)


def test_batch_selection_spreads_a_batch_off_a_single_peak():
    cu = unit_design("sobol", 2048, 2, 0)
    scores = np.exp(-np.sum((cu - 0.5) ** 2, axis=1) / 0.05)
    train = unit_design("sobol", 16, 2, 1)
    chosen = select_batch(scores, cu, train, 4)
    assert chosen[0] == int(np.argmax(scores))
    d = np.linalg.norm(cu[chosen][:, None] - cu[chosen][None], axis=2)[np.triu_indices(4, 1)]
    assert d.min() > 0.5 * spacing(train)
    # without the damping the four best points crowd together
    top = np.argsort(scores)[-4:]
    dtop = np.linalg.norm(cu[top][:, None] - cu[top][None], axis=2)[np.triu_indices(4, 1)]
    assert dtop.min() < d.min()
    with pytest.raises(SurroflowError, match="raise design.adaptive.candidates"):
        select_batch(scores[:3], cu[:3], train, 4)


def test_rounds_stop_at_the_target_the_budget_or_the_last_round():
    cu = unit_design("sobol", 256, 1, 11)
    pts = unit_design("sobol", 8, 1, 3)
    fit = round_fit(pts, kind="linear")

    def run(r=0, **over):
        view = round_view(_adaptive("cross_validation", initial=8 - 4 * r, **over), r)
        assert view["n_hf"] == 8
        return run_round(fit.template, fit.data, REDUCTION, view, cu, cu)
    assert run(target_error=10.0).stop == "target_error"
    res = run(budget=8)
    assert res.stop == "budget" and res.selected.size == 0 and np.isnan(res.scores).all()
    assert run(2, max_rounds=2).stop == "max_rounds"
    # the last round of the budget takes what is left of it
    assert run(budget=10).selected.size == 2


def test_pool_statistic_is_the_mean_or_the_expected_largest_of_a_design():
    from surroflow.adaptive.indicators import pool_statistic
    v = np.random.default_rng(0).lognormal(size=500)
    assert pool_statistic(v, "mean", 64) == pytest.approx(v.mean())
    assert pool_statistic(v, "max") == v.max()
    draws = np.random.default_rng(1).choice(v, size=(20000, 16)).max(axis=1)
    assert pool_statistic(v, "max", 16) == pytest.approx(draws.mean(), rel=0.02)
    assert pool_statistic(v, "max", 1) == pytest.approx(v.mean())
    assert pool_statistic(v, "max", 16) < pool_statistic(v, "max", 64) < v.max()
    with pytest.raises(SurroflowError, match="metric"):
        pool_statistic(v, "median")


def test_a_failed_point_is_not_selected_again():
    """A flagged run is not in the fit (not in ``data``) but is spent: the round never picks it
    again, even where the indicator scores it highest."""
    cu = unit_design("sobol", 64, 1, 11)
    pts = unit_design("sobol", 8, 1, 3)
    fit = round_fit(pts, kind="gaussian_process")
    view = round_view(_adaptive("gp_std", initial=9, per_round=1), 0)
    best = run_round(fit.template, fit.data, REDUCTION, view, cu, cu).selected
    failed = cu[best]
    again = run_round(fit.template, fit.data, REDUCTION, view, cu, cu, spent=np.vstack([pts, failed])).selected
    assert best.size == again.size == 1 and again[0] != best[0]


def test_round_view_sees_budget_and_max_rounds_only_through_the_round():
    ad = {**_adaptive("cross_validation"), "initial": 8, "per_round": 4, "budget": 30, "max_rounds": 10}
    views = [round_view(ad, r) for r in range(7)]
    assert [v["n_hf"] for v in views] == [8, 12, 16, 20, 24, 28, 30]
    assert [v["k"] for v in views] == [4, 4, 4, 4, 4, 2, 0]
    assert "budget" not in views[0] and "max_rounds" not in views[0]
    more = round_view({**ad, "budget": 60, "max_rounds": 12}, 4)
    assert more == views[4]       # a larger budget and more rounds leave round 4 as it was ...
    assert round_view({**ad, "budget": 60}, 6) != views[6]   # ... and change the one that stopped
    assert round_view({**ad, "max_rounds": 4}, 4)["last"] and not views[4]["last"]
    with pytest.raises(SurroflowError, match="round -1"):
        round_view(ad, -1)


def test_gp_std_needs_a_regressor_with_a_std():
    pts = unit_design("sobol", 8, 1, 3)
    with pytest.raises(SurroflowError, match="gp_std needs a regressor"):
        make_indicator("gp_std").scores(round_fit(pts, kind="linear"), pts, pts)
    with pytest.raises(SurroflowError, match="not an indicator"):
        make_indicator("variance")
    with pytest.raises(SurroflowError, match="unknown settings"):
        make_indicator("committee", {"size": 3})


def test_idw_is_exact_at_the_points_and_between_their_values():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(idw(pts, v, pts), v)
    mid = idw(pts, v, np.array([[0.3, 0.3]]))
    assert 1.0 < mid[0] < 3.0


def test_unscale_inverts_scale_on_log_and_linear_axes():
    params = [Parameter("nu", 0.01, 0.1, log_scale=True), Parameter("a", 0.5, 1.5)]
    u = unit_design("sobol", 16, 2, 0)
    np.testing.assert_allclose(unscale(scale(u, params), params), u, atol=1e-12)


def test_runs_to_reach_interpolates_the_first_crossing():
    assert runs_to_reach([8, 12, 16], [0.1, 0.02, 0.01], 0.1) == 8
    n = runs_to_reach([8, 12, 16], [0.1, 0.04, 0.01], 0.02)
    assert 12 < n < 16 and n == pytest.approx(12 + 4 * math.log(2) / math.log(4))
    assert math.isnan(runs_to_reach([8, 12], [0.1, 0.05], 0.01))


# ---------------------------------------------------------------------------------- config
def _config(**adaptive):
    return {"studies": {"s": {
        "task": "parametric",
        "simulator": {"name": "burgers", "parameters": {"nu": [0.02, 0.1], "amplitude": [0.5, 1.5]}},
        "design": {"n_train": 16, "n_test": 4, "adaptive": {"surrogate": "gp", "target_error": 0.01, **adaptive}},
        "reduction": {"clustering": {"n_clusters": 2}},
        "surrogates": {"gp": {"kind": "gaussian_process"}, "mlp": {"kind": "mlp"},
                       "gp_local": {"kind": "gaussian_process", "basis": "local"}}}}}


def test_config_fills_the_budget_and_keeps_the_rounds_out_of_the_generation_settings():
    cfg = validate_config(_config())
    sc = cfg["studies"]["s"]
    assert sc["design"]["adaptive"]["budget"] == 16
    pod = stage_sections(sc, "fit_pod")
    assert "adaptive" not in pod["design"] and "adaptive" not in pod
    ad = stage_sections(sc, "adapt_round", "1")
    assert ad["adaptive"]["per_round"] == 4 and ad["adaptive"]["n_hf"] == 12 and "adaptive" not in ad["design"]
    assert list(ad["surrogates"]) == ["gp"]
    assert "adaptive" not in stage_sections(sc, "generate_round")   # it runs the points it is given
    with pytest.raises(SurroflowError, match="not a round"):
        stage_sections(sc, "adapt_round")
    # changing the rounds leaves the one-shot stages' sections (their config hash) as they were
    other = copy.deepcopy(sc)
    other["design"]["adaptive"]["per_round"] = 2
    assert stage_sections(other, "collect_batches") == stage_sections(sc, "collect_batches")
    assert stage_sections(other, "adapt_round", "0") != stage_sections(sc, "adapt_round", "0")
    # another budget reruns no round that it leaves as it was (round 0 selects 4 of either)
    other["design"]["adaptive"].update(per_round=4, budget=15)
    assert stage_sections(other, "adapt_round", "0") == stage_sections(sc, "adapt_round", "0")
    assert stage_sections(other, "adapt_round", "1") != ad


@pytest.mark.parametrize("adaptive, message", [
    ({"budget": 20}, "design.adaptive.budget: 20 is more than design.n_train"),
    ({"surrogate": "rbf"}, "design.adaptive.surrogate: 'rbf' is not a surrogate of the study"),
    ({"surrogate": "mlp", "indicator": "gp_std"}, "design.adaptive.indicator: gp_std needs a surrogate of kind gaussian_process"),
    ({"surrogate": "mlp", "estimate": "gp_std"}, "design.adaptive.estimate: gp_std needs a surrogate of kind gaussian_process"),
    ({"estimate": "bootstrap"}, "design.adaptive.estimate"),
    ({"indicator": "local_residual"}, "design.adaptive.indicator: local_residual scores the local basis"),
    ({"surrogate": "gp_local", "estimate": "gp_std"}, "design.adaptive.estimate: gp_std needs global bases"),
    ({"initial": 16}, "design.adaptive.initial: 16 leaves no run"),
    ({"indicator": "committee", "indicator_params": {"n": 2}}, "design.adaptive.indicator_params"),
])
def test_config_refuses_adaptive_settings_that_do_not_fit_the_study(adaptive, message):
    with pytest.raises(SurroflowError, match="studies.s." + message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(_config(**adaptive))


def test_a_forecast_study_refuses_the_parametric_only_sections():
    cfg = _config()
    sc = cfg["studies"]["s"]
    sc["task"] = "forecast"
    with pytest.raises(SurroflowError, match=r"studies.s.design.adaptive: adaptive sampling needs a parametric study"):
        validate_config(cfg)


def two_regimes(p: np.ndarray) -> np.ndarray:
    """A bump at x = 0.25 for p0 < 0.5 and at x = 0.75 above, switching over a width of 0.03:
    between the regimes the field is a mixture that neither regime's basis holds."""
    p = np.atleast_2d(p)
    s = 0.5 * (1.0 + np.tanh((p[:, :1] - 0.5) / 0.03))
    bump = lambda c: np.exp(-((GRID - c) / 0.08) ** 2)   # noqa: E731
    return (1.0 + 0.3 * p[:, :1]) * ((1.0 - s) * bump(0.25) + s * bump(0.75))


LOCAL = {**REDUCTION, "clustering": {"n_clusters": 2, "dissimilarity": "euclidean", "overlap": 0.0,
                                     "selector": "nearest_centroid", "tolerance": 0.01, "local_rank": 2, "seed": 0,
                                     "minibatch_threshold": 20000}}


def test_local_residual_puts_the_points_between_the_regimes():
    from surroflow.reduction.local import LocalPOD
    cu = unit_design("sobol", 512, 1, 11)
    pts = unit_design("sobol", 8, 1, 3)
    chosen = []
    for r in range(3):
        n = pts.shape[0]
        data = TrainingSet(X=pts, S={"u": two_regimes(pts)}, groups=np.arange(n), unit=pts,
                           weights={"u": np.full(GRID.size, 1.0 / GRID.size)})
        template = ReducedModel({"u": LocalPOD(n_clusters=2)}, make_estimator("rbf", {}, "surrogate"))
        view = round_view(_adaptive("local_residual", initial=8, per_round=2), r)
        res = run_round(template, data, LOCAL, view, cu, cu)
        assert res.selected.size == 2
        chosen.append(cu[res.selected])
        pts = np.vstack([pts, chosen[-1]])
    # the switch sits in the largest gap of the initial design, so a gap filler would put one
    # point there; the residual keeps coming back to it, round after round
    tight = np.abs(np.vstack(chosen)[:, 0] - 0.5) < 0.03
    assert tight.sum() >= 3, np.vstack(chosen).ravel()
    with pytest.raises(SurroflowError, match="basis local"):
        make_indicator("local_residual").scores(round_fit(pts), cu, cu)
