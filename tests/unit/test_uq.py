"""surroflow.uq: input distributions and the copula, QoI reductions, streaming moments,
statistics with confidence intervals, config checks, and a propagation through a small Burgers
reduced model with its high-fidelity check (the stage's runner) and files."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from surroflow import SurroflowError
from surroflow.uq import InputModel, QoI, StreamingMoments, sample_statistics
from surroflow.uq.distributions import correlation_problems

ROOT = Path(__file__).resolve().parents[2]
INPUTS = {
    "a": {"distribution": "uniform", "low": 1.0, "high": 3.0},
    "b": {"distribution": "normal", "mean": -2.0, "std": 0.5},
    "c": {"distribution": "lognormal", "mu": 0.1, "sigma": 0.3},
    "d": {"distribution": "truncnormal", "mean": 0.0, "std": 1.0, "low": -0.5, "high": 2.0},
    "e": {"distribution": "fixed", "value": 4.5},
}


# ------------------------------------------------------------------ distributions
def test_draws_have_the_moments_of_each_marginal_in_the_model_order():
    order = ["e", "d", "c", "b", "a"]
    m = InputModel.from_config(INPUTS, order)
    X = m.sample(200_000, 0)
    assert X.shape == (200_000, 5)
    exact = {"a": (2.0, 2 / math.sqrt(12)), "b": (-2.0, 0.5),
             "c": (math.exp(0.1 + 0.045), math.sqrt((math.exp(0.09) - 1) * math.exp(0.2 + 0.09))),
             "d": (float(stats.truncnorm(-0.5, 2.0).mean()), float(stats.truncnorm(-0.5, 2.0).std())),
             "e": (4.5, 0.0)}
    for j, n in enumerate(order):
        mean, std = exact[n]
        assert m.moments()[n] == pytest.approx((mean, std), rel=1e-12, abs=1e-12)
        assert X[:, j].mean() == pytest.approx(mean, abs=4 * std / math.sqrt(len(X)) + 1e-12), n
        assert X[:, j].std(ddof=1) == pytest.approx(std, rel=0.01, abs=1e-12), n
    d = X[:, order.index("d")]
    assert d.min() >= -0.5 and d.max() <= 2.0
    assert np.all(X[:, 0] == 4.5)
    # the same seed gives the same draws
    np.testing.assert_array_equal(m.sample(10, 3), m.sample(10, 3))


def test_gaussian_copula_keeps_marginals_and_gives_the_rank_correlation():
    inputs = {"b": INPUTS["b"], "a": INPUTS["a"], "e": INPUTS["e"]}
    rho = 0.6
    m = InputModel.from_config(inputs, ["a", "b", "e"], [[1.0, rho], [rho, 1.0]])
    assert m.random == ["b", "a"] and m.correlated
    X = m.sample(100_000, 1)
    # marginals unchanged
    assert stats.kstest(X[:, 0], stats.uniform(1.0, 2.0).cdf).pvalue > 1e-3
    assert stats.kstest(X[:, 1], stats.norm(-2.0, 0.5).cdf).pvalue > 1e-3
    # Spearman's rho of a Gaussian copula: (6/pi) asin(rho/2)
    assert stats.spearmanr(X[:, 0], X[:, 1]).statistic == pytest.approx(6 / math.pi * math.asin(rho / 2), abs=0.01)


@pytest.mark.parametrize("R, words", [
    ([[1.0, 0.5], [0.4, 1.0]], "not symmetric"),
    ([[2.0, 0.0], [0.0, 1.0]], "diagonal must be 1"),
    ([[1.0, 1.0], [1.0, 1.0]], "not positive definite"),
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], "2x2 matrix"),
])
def test_a_bad_correlation_is_refused_in_one_sentence(R, words):
    problems = correlation_problems(R, ["a", "b"])
    assert len(problems) == 1 and words in problems[0] and problems[0].startswith("uq.correlation")
    with pytest.raises(SurroflowError, match=words):
        InputModel.from_config({"a": INPUTS["a"], "b": INPUTS["b"]}, ["a", "b"], R)


def test_unknown_missing_and_malformed_inputs_are_named():
    with pytest.raises(SurroflowError) as err:
        InputModel.from_config({"a": INPUTS["a"], "zz": INPUTS["b"],
                                "c": {"distribution": "normal", "mean": 1.0}}, ["a", "b", "c"])
    text = str(err.value)
    assert "no distribution for parameter(s) ['b']" in text
    assert "['zz'] are not parameters of the model" in text
    assert "uq.inputs.c: distribution normal needs ['mean', 'std']; missing ['std']" in text
    with pytest.raises(SurroflowError, match="takes \\['low', 'high'\\], not \\['mean'\\]"):
        InputModel.from_config({"a": {**INPUTS["a"], "mean": 1.0}}, ["a"])
    with pytest.raises(SurroflowError, match="low \\(3\\) must be < high \\(1\\)"):
        InputModel.from_config({"a": {"distribution": "uniform", "low": 3.0, "high": 1.0}}, ["a"])


# ------------------------------------------------------------------ statistics
def test_streaming_moments_equal_the_in_memory_result():
    rng = np.random.default_rng(0)
    a = 1e6 + rng.normal(size=(1013, 7, 5))          # a large offset: the naive sum of squares loses it
    m = StreamingMoments()
    for lo, hi in ((0, 1), (1, 400), (400, 401), (401, 1013)):
        m.update(a[lo:hi])
    assert m.n == 1013
    np.testing.assert_allclose(m.mean, a.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(m.std(), a.std(axis=0, ddof=1), rtol=1e-9)


def test_intervals_match_the_textbook_formulas_and_cover():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, 400)
    s = sample_statistics(x, 0.95)
    lo, hi = stats.t.interval(0.95, 399, loc=x.mean(), scale=stats.sem(x))
    assert (s.mean_lower, s.mean_upper) == pytest.approx((lo, hi), rel=1e-12)
    sd = x.std(ddof=1)
    assert s.std_lower == pytest.approx(sd * math.sqrt(399 / stats.chi2.ppf(0.975, 399)), rel=1e-12)
    assert s.std_upper == pytest.approx(sd * math.sqrt(399 / stats.chi2.ppf(0.025, 399)), rel=1e-12)
    assert np.all(s.quantile_lower <= s.quantile) and np.all(s.quantile <= s.quantile_upper)
    # coverage over repeated experiments: ~95% for mean and std
    hits = np.array([[(r.mean_lower <= 3.0 <= r.mean_upper), (r.std_lower <= 2.0 <= r.std_upper),
                      (r.quantile_lower[1] <= 3.0 <= r.quantile_upper[1])]
                     for r in (sample_statistics(rng.normal(3.0, 2.0, 50)) for _ in range(400))])
    assert np.all((hits.mean(axis=0) > 0.91) & (hits.mean(axis=0) < 0.99))


# ------------------------------------------------------------------ QoIs
def _fields() -> xr.Dataset:
    t = np.array([0.0, 0.5, 1.0])
    x = np.array([0.0, 1.0, 2.0, 3.0])
    u = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4) * np.array([1.0, -1.0])[:, None, None]
    return xr.Dataset({"u": (("sample", "time", "x"), u)}, coords={"time": t, "x": x}, attrs={"time_dim": "time"})


def test_qoi_reductions():
    ds = _fields()
    u = ds["u"].values
    w = np.array([0.5, 1.0, 1.0, 0.5])
    def q(**kw):
        return QoI.from_config("q", {"variable": "u", **kw})
    np.testing.assert_array_equal(q(reduce="max")(ds), u[:, -1].max(axis=1))
    np.testing.assert_array_equal(q(reduce="min", time=0.4)(ds), u[:, 1].min(axis=1))
    np.testing.assert_allclose(q(reduce="mean")(ds, {"u": w}), (u[:, -1] @ w) / w.sum())
    np.testing.assert_allclose(q(reduce="norm", time=0.0)(ds, {"u": w}), np.sqrt(u[:, 0] ** 2 @ w))
    np.testing.assert_array_equal(q(reduce="point", at={"x": 2.2})(ds), u[:, -1, 2])
    with pytest.raises(SurroflowError, match="every space dimension"):
        q(reduce="point")(ds)


# ------------------------------------------------------------------ config
def _tiny() -> dict:
    from surroflow.config import load_yaml_strict
    return load_yaml_strict(ROOT / "tests" / "config" / "tiny.yaml")


def test_tiny_config_has_a_valid_uq_section_and_its_stage_sections():
    from surroflow.config import stage_sections, validate_config
    cfg = validate_config(_tiny())
    uq = cfg["studies"]["tiny"]["uq"]
    assert uq["confidence"] == 0.95 and uq["seed"] == 0 and uq["correlation"] is None
    sec = stage_sections(cfg["studies"]["tiny"], "propagate_uq")
    assert sorted(sec) == ["design", "simulator", "surrogates", "task", "uq"]
    assert list(sec["surrogates"]) == [uq["surrogate"]]


def test_semantic_problems_of_a_uq_section_are_all_reported():
    from surroflow.config import validate_config
    cfg = _tiny()
    uq = cfg["studies"]["tiny"]["uq"]
    uq["surrogate"] = "gpx"
    uq["inputs"]["visc"] = uq["inputs"].pop("nu")
    uq["qoi"]["p"] = {"variable": "v", "reduce": "max"}
    uq["qoi"]["pt"] = {"variable": "u", "reduce": "point", "at": {"y": 1.0}}
    uq["sobol"] = {"n_base": 100}
    uq["correlation"] = [[1.0, 2.0], [2.0, 1.0]]
    with pytest.raises(SurroflowError) as err:
        validate_config(cfg)
    text = str(err.value)
    for words in ("studies.tiny.uq.surrogate: 'gpx' is not a surrogate of the study",
                  "no distribution for parameter(s) ['nu']", "['visc'] are not parameters of the model",
                  "studies.tiny.uq.qoi.p.variable: 'v' is not a variable the surrogate predicts",
                  "studies.tiny.uq.qoi.pt.at: reduce point needs a coordinate for each space dimension of u ['x']",
                  "studies.tiny.uq.sobol.n_base: 100 is not a power of 2",
                  "studies.tiny.uq.correlation: correlations must lie in [-1, 1]"):
        assert words in text, words
    bad = _tiny()
    bad["studies"]["tiny"]["uq"]["n_sample"] = 5
    with pytest.raises(SurroflowError, match="unknown key\\(s\\) \\['n_sample'\\]"):
        validate_config(bad)


# ------------------------------------------------------------------ propagation with the HF check
@pytest.fixture(scope="module")
def burgers_files(tmp_path_factory):
    """A small Burgers study written as the stages write it: train data, a basis, a GP model."""
    from surroflow.config import validate_config
    from surroflow.design import design_records, make_design, resolve_parameters
    from surroflow.io import write_dataset
    from surroflow.reduction import POD
    from surroflow.simulators import get_simulator
    from surroflow.stages.generate_batch import batch_dataset, run_samples
    from surroflow.surrogates.reduced import ReducedModel
    from surroflow.surrogates.registry import make_estimator

    from tests.artifacts import stamp
    cfg = _tiny()
    sc = cfg["studies"]["tiny"]
    sc["surrogates"] = {"gp": {"kind": "gaussian_process"}}
    sc["uq"].update({"surrogate": "gp", "n_samples": 4000, "n_hf_check": 24, "batch_size": 1000})
    study = validate_config(cfg)["studies"]["tiny"]
    root = tmp_path_factory.mktemp("uq") / "results" / "tiny"
    settings = study["simulator"]["settings"]
    sim = get_simulator("burgers", **settings)
    design = make_design(resolve_parameters(sim.parameters(), study["simulator"]["parameters"]), "sobol", 32, 0,
                         "train")
    train = batch_dataset(sim, design, run_samples("burgers", settings, design_records(design), None))
    paths = {"train": root / "generate" / "train.nc", "basis": root / "reduce" / "u.nc", "model": root / "train" / "gp.nc"}
    write_dataset(train.assign_attrs(stamp({}, "collect_batches", paths["train"])), paths["train"])
    pod = POD(method="exact", energy=0.99999)
    model = ReducedModel({"u": pod}, make_estimator("gaussian_process", {}, "surrogate")).fit_dataset(train)
    # what the stage reads of a basis file: its fit_seconds (the reduction cost)
    basis = xr.Dataset({"singular_values": ("mode", pod.singular_values_)})
    write_dataset(basis.assign_attrs(stamp({"variable": "u", "fit_seconds": 0.5}, "fit_pod", paths["basis"])),
                  paths["basis"])
    write_dataset(model.to_dataset(stamp({"model_name": "gp", "model_kind": "gaussian_process", "fit_seconds": 1.0},
                                         "train_surrogate", paths["model"])), paths["model"])
    return root, paths, study


def test_propagation_agrees_with_the_high_fidelity_check_and_writes_its_files(burgers_files):
    import pandas as pd

    from surroflow.io import open_dataset
    from surroflow.stages.propagate_uq import hf_runner
    from surroflow.uq.files import propagate_uq_files
    root, paths, study = burgers_files
    out = root / "uq"
    res = propagate_uq_files(str(paths["model"]), str(paths["train"]), [str(paths["basis"])], study["uq"],
                             statistics_path=str(out / "statistics.nc"), summary_path=str(out / "summary.csv"),
                             summary_html=str(out / "summary.html"), figures_dir=str(out / "figures"),
                             run_hf=hf_runner(study["simulator"]))
    ds = open_dataset(out / "statistics.nc")
    assert ds["qoi_surrogate"].shape == (4000, 2) and ds["qoi_high_fidelity"].shape == (24, 2)
    assert ds["u_mean"].dims == ("time", "x") and ds["u_std"].dims == ("time", "x")
    assert ds["u_mean_high_fidelity"].dims == ("time", "x")
    # the streamed mean field is the mean of the fields; the check agrees with the surrogate
    assert bool(ds["mean_agrees"].all()) and bool(ds["std_agrees"].all())
    np.testing.assert_allclose(ds["u_mean"].values, ds["u_mean_high_fidelity"].values, atol=0.05)
    assert ds.attrs["offline_seconds"] == pytest.approx(ds.attrs["generation_seconds"] + 1.5)
    assert 0 < ds.attrs["cost_ratio"] < ds.attrs["cost_ratio_with_offline"]
    assert ds.attrs["hf_monte_carlo_seconds"] == pytest.approx(4000 * ds.attrs["hf_seconds_per_sample"])
    assert ds["sobol_first"].dims == ("qoi", "input") and list(ds["input"].values) == ["nu", "amplitude"]
    assert np.all(ds["sobol_total"].values >= ds["sobol_first"].values - 0.1)
    s = pd.read_csv(out / "summary.csv")
    assert list(s["source"]) == ["surrogate", "high_fidelity"] * 2 and set(s["surrogate"]) == {"gp"}
    assert "ST_amplitude" in s.columns and (out / "summary.html").stat().st_size > 500
    for name in ("qoi_distributions", "sobol_indices"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.pdf").is_file()
    assert res.rows[0]["mean"] == pytest.approx(float(ds["mean"].sel(qoi="u_max", source="surrogate")))


def test_streamed_fields_equal_the_in_memory_statistics(burgers_files):
    from surroflow.evaluation.parametric import load_model
    from surroflow.uq.propagate import surrogate_monte_carlo
    _, paths, study = burgers_files
    model = load_model(str(paths["model"])).model
    X = InputModel.from_config(study["uq"]["inputs"], ["nu", "amplitude"]).sample(700, 5)
    qois = [QoI.from_config(n, q) for n, q in study["uq"]["qoi"].items()]
    mc = surrogate_monte_carlo(model, X, qois, batch_size=128)
    full = model.predict_fields(X)["u"]
    np.testing.assert_allclose(mc.moments["u"].mean, full.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mc.moments["u"].std(), full.std(axis=0, ddof=1), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(mc.qoi[:, 0], full[:, -1].max(axis=1))
    one = surrogate_monte_carlo(model, X, qois, batch_size=700)
    np.testing.assert_allclose(one.qoi, mc.qoi, rtol=1e-12)
