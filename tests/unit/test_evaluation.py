"""The evaluation package: parametric (errors against independently computed ones, the error
split identity, flagged samples, honest costs) and forecast (baselines always present, a
diverging model labelled, not dropped), through the stage modules the rules call."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from surroflow.io import STATUS_FAILED, STATUS_OK, open_dataset, write_dataset

from tests.artifacts import context, stamp

EVALUATION = {"n_plot_samples": 3, "timing_repeats": 1, "error_bound": 0.5, "hf_timing_samples": 3}
#: the configured surrogates of the hand-made study (the stage checks each model file's kind)
SURROGATES = {"rbf": {"kind": "rbf"}, "linear": {"kind": "linear"}, "rbf_local": {"kind": "rbf"}}


# =============================================================================== parametric data
def _fields(design: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A travelling, decaying bump: smooth in the parameters, a few POD modes capture it."""
    a, c = design[:, 0], design[:, 1]
    X, T = np.meshgrid(x, t)                                  # (nt, nx)
    return a[:, None, None] * np.exp(-((X[None] - 0.3 - c[:, None, None] * T[None]) ** 2) / 0.02) \
        * np.exp(-T[None])


#: calls of the hand-made simulator: ("hf", amplitude), and ("query", rows) when a test records queries
CALLS: list[tuple[str, float]] = []
X_GRID, T_GRID = np.linspace(0, 1, 41), np.linspace(0, 0.5, 6)


def _hand_made(amplitude: float, speed: float, sleep_s: float = 0.0) -> dict[str, np.ndarray]:
    """The high-fidelity model of the hand-made study (GENERATION's ``hand_made`` simulator):
    the same bump, after sleeping ``sleep_s`` (a known solver time)."""
    CALLS.append(("hf", amplitude))
    time.sleep(sleep_s)
    return {"u": _fields(np.array([[amplitude, speed]]), X_GRID, T_GRID)[0]}


def _register_hand_made() -> None:
    from surroflow.simulators import Coordinate, OutputVariable, Parameter, available, register_function
    if "hand_made" not in available():
        register_function("hand_made", _hand_made, [Parameter("amplitude", 0.5, 1.5, "m/s"),
                                                    Parameter("speed", 0.2, 0.6, "1/s")],
                          [OutputVariable("u", ("time", "x"), "m/s")],
                          {"time": Coordinate(("time",), T_GRID, "s"), "x": Coordinate(("x",), X_GRID, "m")})


_register_hand_made()


def _generate(path: Path, n: int, seed: int, *, bad: int | None = None, timed: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    design = np.column_stack([rng.uniform(0.5, 1.5, n), rng.uniform(0.2, 0.6, n)])
    x, t = np.linspace(0, 1, 41), np.linspace(0, 0.5, 6)
    u = _fields(design, x, t)
    status = np.full(n, STATUS_OK, dtype="i1")
    wall = rng.uniform(0.5, 1.5, n) if timed else np.full(n, np.nan)
    if bad is not None:
        status[bad], u[bad] = STATUS_FAILED, np.nan
    ds = xr.Dataset(
        {"u": (("sample", "time", "x"), u, {"units": "m/s", "long_name": "velocity"}),
         "design": (("sample", "parameter"), design),
         "status": (("sample",), status), "status_reason": (("sample",), np.array([""] * n, dtype=object)),
         "wall_time": (("sample",), wall, {"units": "s"})},
        coords={"sample": np.arange(n), "parameter": ["amplitude", "speed"],
                "parameter_units": ("parameter", ["m/s", "1/s"]),
                "time": ("time", t, {"units": "s"}), "x": ("x", x, {"units": "m"})},
        attrs=stamp({"time_dim": "time", "split": path.stem}, "collect_batches", path))
    return write_dataset(ds, path)


def _fit_files(root: Path, train_path: Path, rank: int = 4) -> tuple[Path, list[Path]]:
    from surroflow.reduction import POD
    from surroflow.snapshots import snapshot_matrix
    from surroflow.surrogates.reduced import ReducedModel
    from surroflow.surrogates.registry import make_estimator
    train = open_dataset(train_path)
    pod = POD(method="exact", rank=rank).fit(snapshot_matrix(train, "u"))
    basis = root / "reduce" / "u.nc"
    write_dataset(pod.to_dataset(("x",), {"x": train["x"]}, (train.sizes["x"],),
                                 attrs=stamp({"variable": "u", "fit_seconds": 0.25}, "fit_pod", basis)), basis)
    models = []
    for name, kind, params in (("rbf", "rbf", {}), ("linear", "linear", {"degree": 1})):
        rm = ReducedModel({"u": POD.from_dataset(open_dataset(basis))}, make_estimator(kind, params, "surrogate"))
        rm.fit_dataset(train)
        path = root / "train" / f"{name}.nc"
        write_dataset(rm.to_dataset(stamp({"model_name": name, "model_kind": kind, "fit_seconds": 0.5},
                                          "train_surrogate", path)), path)
        models.append(path)
    return basis, models


def _evaluate(root: Path, train: Path, test: Path, basis: Path, models: list[Path]) -> dict[str, Path]:
    from surroflow.stages import evaluate_surrogates
    out = {"metrics": root / "evaluation" / "metrics.nc", "summary": root / "evaluation" / "summary.csv",
           "summary_html": root / "evaluation" / "summary.html", "figures": root / "evaluation" / "figures"}
    ctx = context("evaluate_surrogates", evaluation=EVALUATION, surrogates=SURROGATES)
    evaluate_surrogates.run({"train": str(train), "test": str(test), "bases": [str(basis)],
                             "models": [str(m) for m in models]}, {k: str(v) for k, v in out.items()}, ctx)
    return out


def _evaluate_files(root: Path, train: Path, test: Path, basis: Path, models: list[Path],
                    simulator: dict | None, **evaluation) -> dict[str, Path]:
    """The stage's work with the study's ``simulator`` section given (its time measured beside
    the queries)."""
    from surroflow.evaluation.parametric import evaluate_surrogate_files
    out = {"metrics": root / "evaluation" / "metrics.nc", "summary": root / "evaluation" / "summary.csv",
           "summary_html": root / "evaluation" / "summary.html", "figures": root / "evaluation" / "figures"}
    evaluate_surrogate_files(str(train), str(test), [str(basis)], [str(m) for m in models],
                             {**EVALUATION, **evaluation}, metrics_path=str(out["metrics"]),
                             summary_path=str(out["summary"]), figures_dir=str(out["figures"]),
                             summary_html=str(out["summary_html"]), simulator=simulator)
    return out


#: the hand-made simulator with a known solver time per sample
SLEEP_S = 0.1
TIMED_SIMULATOR = {"name": "hand_made", "settings": {"sleep_s": SLEEP_S}, "parameters": {}, "timeout_s": None}


@pytest.fixture(scope="module")
def parametric(tmp_path_factory):
    root = tmp_path_factory.mktemp("parametric")
    train = _generate(root / "generate" / "train.nc", 24, 0, bad=5)
    test = _generate(root / "generate" / "test.nc", 7, 1, bad=2)
    basis, models = _fit_files(root, train)
    return root, train, test, basis, models, _evaluate(root, train, test, basis, models)


def test_parametric_errors_equal_independent_ones(parametric):
    from surroflow.surrogates.reduced import ReducedModel
    _, _, test, basis, models, out = parametric
    ds = open_dataset(test)
    ok = np.flatnonzero(ds["status"].values == STATUS_OK)
    metrics = open_dataset(out["metrics"], stage="evaluate_surrogates")
    summary = pd.read_csv(out["summary"]).set_index("surrogate")
    w = open_dataset(basis)["weights"].values.reshape(-1)
    from surroflow.reduction import POD
    pod = POD.from_dataset(open_dataset(basis))
    for path in models:
        mds = open_dataset(path)
        name = mds.attrs["model_name"]
        rm = ReducedModel.from_dataset(mds)
        rel, proj = [], []
        for s in ok:
            u = ds["u"].values[s]                                   # (time, x)
            pred = rm.predict_fields(ds["design"].values[s:s + 1], ds["time"].values)["u"][0]
            ref = np.sqrt(np.sum(u ** 2 * w))
            rel.append(np.sqrt(np.sum((u - pred) ** 2 * w)) / ref)
            proj.append(np.sqrt(np.sum((u - pod.project(u)) ** 2 * w)) / ref)
        np.testing.assert_allclose(metrics["rel_l2"].sel(surrogate=name, variable="u").values, rel, rtol=1e-10)
        np.testing.assert_allclose(metrics["projection_error"].sel(surrogate=name, variable="u").values, proj,
                                   rtol=1e-8, atol=1e-14)
        assert summary.loc[name, "rel_l2_mean"] == pytest.approx(np.mean(rel), rel=1e-5)
        assert summary.loc[name, "rel_l2_max"] == pytest.approx(np.max(rel), rel=1e-5)
        assert summary.loc[name, "online_modes"] == 4 and summary.loc[name, "basis"] == "global"
        assert summary.loc[name, "kind"] == name
    # the two regressors really differ (the errors are not a property of the basis alone)
    assert summary.loc["rbf", "rel_l2_mean"] != summary.loc["linear", "rel_l2_mean"]
    # the linear surrogate is the baseline; skill = 1 - error / the baseline's error
    assert summary.loc["linear", "role"] == "baseline" and summary.loc["rbf", "role"] == "candidate"
    assert summary.loc["linear", "skill_vs_linear"] == pytest.approx(0.0, abs=1e-12)
    assert summary.loc["rbf", "skill_vs_linear"] == pytest.approx(
        1 - summary.loc["rbf", "rel_l2_mean"] / summary.loc["linear", "rel_l2_mean"], rel=1e-5)


def test_error_split_identity_and_zero_selection_for_global_bases(parametric):
    *_, out = parametric
    m = open_dataset(out["metrics"])
    tot = m["rel_l2"].values ** 2
    parts = m["projection_error"].values ** 2 + m["selection_error"].values ** 2 + m["regression_error"].values ** 2
    np.testing.assert_allclose(tot, parts, rtol=1e-9)
    assert np.all(m["selection_error"].values == 0) and np.all(m["regression_error"].values > 0)
    assert np.all(m["selection_accuracy"].values == 1.0)


def test_local_model_has_a_selection_error(parametric, tmp_path):
    from surroflow.reduction.local import LocalPOD
    from surroflow.surrogates.reduced import ReducedModel
    from surroflow.surrogates.registry import make_estimator
    _, train, test, basis, models, _ = parametric
    rm = ReducedModel({"u": LocalPOD(n_clusters=3, rank=2, random_state=0)}, make_estimator("rbf", {}, "surrogate"))
    rm.fit_dataset(open_dataset(train))
    local = write_dataset(rm.to_dataset(stamp({"model_name": "rbf_local", "model_kind": "rbf", "fit_seconds": 0.5},
                                              "train_surrogate", tmp_path / "rbf_local.nc")), tmp_path / "rbf_local.nc")
    out = _evaluate(tmp_path, train, test, basis, [models[0], local])
    m = open_dataset(out["metrics"])
    s = pd.read_csv(out["summary"]).set_index("surrogate")
    assert s.loc["rbf_local", "basis"] == "local" and s.loc["rbf_local", "online_modes"] == 2
    sel = m["selection_error"].sel(variable="u")
    assert np.all(sel.sel(surrogate="rbf").values == 0)
    assert np.all(np.isfinite(sel.sel(surrogate="rbf_local").values))
    assert sel.sel(surrogate="rbf_local").values.max() > 0        # computed, not zero-filled
    tot = m["rel_l2"].values ** 2
    parts = m["projection_error"].values ** 2 + m["selection_error"].values ** 2 + m["regression_error"].values ** 2
    np.testing.assert_allclose(tot, parts, rtol=1e-9)
    assert 0 < float(m["selection_accuracy"].sel(surrogate="rbf_local")) <= 1
    assert s.loc["rbf_local", "selection_error_mean"] == pytest.approx(float(sel.sel(surrogate="rbf_local").mean()),
                                                                        rel=1e-5)


def test_flagged_samples_excluded_and_counted(parametric):
    *_, out = parametric
    m = open_dataset(out["metrics"])
    assert list(m["sample"].values) == [0, 1, 3, 4, 5, 6]          # sample 2 failed
    assert np.all(np.isfinite(m["rel_l2"].values))
    s = pd.read_csv(out["summary"])
    assert (s["n_test"] == 6).all() and (s["n_test_flagged"] == 1).all() and (s["n_train_flagged"] == 1).all()


@pytest.fixture(scope="module")
def timed(parametric, tmp_path_factory):
    """The parametric study evaluated with its simulator timed beside the queries (2 samples),
    every call of the simulator and of the surrogates recorded in order."""
    from surroflow.surrogates.reduced import ReducedModel
    root, train, test, basis, models, _ = parametric
    original = ReducedModel.predict_fields

    def recorded(self, design, *args, **kwargs):
        CALLS.append(("query", len(design)))
        return original(self, design, *args, **kwargs)
    mp = pytest.MonkeyPatch()
    mp.setattr(ReducedModel, "predict_fields", recorded)
    CALLS.clear()
    try:
        out = _evaluate_files(tmp_path_factory.mktemp("timed"), train, test, basis, models, TIMED_SIMULATOR,
                              hf_timing_samples=2)
    finally:
        mp.undo()
    return out, list(CALLS)


def test_side_by_side_high_fidelity_time_runs_the_simulator(timed):
    out, calls = timed
    s = pd.read_csv(out["summary"]).set_index("surrogate")
    hf = [c for c in calls if c[0] == "hf"]
    # one untimed warm-up, then per timed sample a sizing run and `timing_repeats` loops of one run
    # (0.1 s each: timed like the queries, the fastest counts)
    assert len(hf) == 1 + 2 * (1 + EVALUATION["timing_repeats"])
    m = open_dataset(out["metrics"])
    assert SLEEP_S <= float(m["hf_seconds"]) < SLEEP_S + 0.2       # the known solver time, measured here
    assert (s["hf_seconds"] == s["hf_seconds"].iloc[0]).all()
    assert float(m["hf_seconds_generate"]) == pytest.approx(s["hf_seconds_generate"].iloc[0], rel=1e-5)
    assert "interleaved" in m.attrs["timing_note"] and int(m.attrs["hf_timing_samples"]) == 2


def test_side_by_side_timing_interleaves_samples_and_queries(timed):
    out, calls = timed
    n = int(pd.read_csv(out["summary"])["n_test"].iloc[0])
    first = next(i for i, c in enumerate(calls) if c[0] == "hf")
    timing = calls[first:]
    # after the untimed warm-up (1 hf + both models' latency and throughput calls), each round is
    # one hf sample, then per model (rbf, linear) a one-point and a batched query, each timed by
    # loops of repeated calls (a sizing call + `timing_repeats` loops): runs of equal calls
    repeats = EVALUATION["timing_repeats"]
    runs: list[tuple[tuple[str, int], int]] = []
    for c in timing:
        key = (c[0], 0 if c[0] == "hf" else c[1])
        if runs and runs[-1][0] == key and (key[0] != "hf" or len(runs) > 1):    # the warm-up run alone
            runs[-1] = (key, runs[-1][1] + 1)
        else:
            runs.append((key, 1))
    per_model = [("query", 1), ("query", n)]
    warm = per_model * 2
    rounds = 4                                            # TIMED_SAMPLES test samples, hf in the first 2
    expected = [("hf", 0)] + warm + sum(((([("hf", 0)] if r < 2 else []) + per_model * 2) for r in range(rounds)), [])
    assert [k for k, _ in runs] == expected
    timed_runs = [count for k, count in runs[1 + len(warm):] if k[0] == "query"]
    assert len(timed_runs) == rounds * 4 and all(count >= 1 + repeats for count in timed_runs)
    design = open_dataset(out["metrics"])["design"].values
    hf_runs = [count for k, count in runs[1 + len(warm):] if k[0] == "hf"]
    assert hf_runs == [1 + repeats] * 2                   # a sizing run and `repeats` loops of one run
    per_run = 1 + repeats
    assert [c[1] for c in timing if c[0] == "hf"] == pytest.approx([design[0, 0]] * (1 + per_run)
                                                                    + [design[1, 0]] * per_run)


def test_latency_throughput_and_both_speedups(timed):
    out, _ = timed
    s = pd.read_csv(out["summary"]).set_index("surrogate")
    for col in ("latency_seconds", "throughput_seconds", "hf_seconds", "speedup", "speedup_throughput",
                "hf_seconds_generate"):
        assert col in s.columns and (s[col] > 0).all(), col
    from surroflow.evaluation.parametric import SUMMARY_COLUMNS
    assert list(s.reset_index().columns[:len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    for name in ("rbf", "linear"):
        r = s.loc[name]
        assert r["speedup"] == pytest.approx(r["hf_seconds"] / r["latency_seconds"], rel=1e-4)
        assert r["speedup_throughput"] == pytest.approx(r["hf_seconds"] / r["throughput_seconds"], rel=1e-4)
        exact = r["offline_seconds"] / (r["hf_seconds"] - r["latency_seconds"])
        assert exact <= r["break_even_queries"] + 1e-3 < exact + 1 + 1e-3
    m = open_dataset(out["metrics"])
    np.testing.assert_allclose(m["latency_seconds"].values, s.loc[list(m["surrogate"].values), "latency_seconds"],
                               rtol=1e-5)


def test_files_or_unavailable_simulator_gives_nan_with_reason(parametric, tmp_path):
    from surroflow.evaluation.parametric import high_fidelity
    from surroflow.simulators import SimulatorUnavailable, register, simulator_class
    root, train, test, basis, models, _ = parametric

    class NoSolverHere(simulator_class("hand_made")):
        name = "no_solver_here"

        def __init__(self, **settings):
            raise SimulatorUnavailable("ccx not on PATH")
    register(NoSolverHere)
    ok = open_dataset(test)
    assert high_fidelity({"name": "files", "settings": {}}, ok).run is None
    hf = high_fidelity({"name": "no_solver_here", "settings": {}}, ok)
    assert hf.run is None and "ccx not on PATH" in hf.reason
    CALLS.clear()
    out = _evaluate_files(tmp_path, train, test, basis, models[:1], {"name": "files", "settings": {}})
    r = pd.read_csv(out["summary"]).iloc[0]
    for col in ("hf_seconds", "speedup", "speedup_throughput", "break_even_queries"):
        assert math.isnan(r[col]), col
    assert r["latency_seconds"] > 0 and r["throughput_seconds"] > 0 and r["hf_seconds_generate"] > 0
    assert "no solver to time" in open_dataset(out["metrics"]).attrs["timing_note"]
    assert not [c for c in CALLS if c[0] == "hf"]


def test_failing_timed_sample_gives_nan_with_reason(parametric, tmp_path):
    _, train, test, basis, models, _ = parametric
    out = _evaluate_files(tmp_path, train, test, basis, models[:1],
                          {"name": "hand_made", "settings": {"sleep_s": "not a number"}})
    r = pd.read_csv(out["summary"]).iloc[0]
    assert math.isnan(r["hf_seconds"]) and math.isnan(r["speedup"]) and r["latency_seconds"] > 0
    assert "failed when timed (TypeError" in open_dataset(out["metrics"]).attrs["timing_note"]


def test_costs_measured_and_consistent(parametric, timed):
    _, train, test, _, _, _ = parametric
    out, _ = timed
    s = pd.read_csv(out["summary"]).set_index("surrogate")
    tr, te = open_dataset(train), open_dataset(test)
    ok = te["status"].values == STATUS_OK
    gen = float(np.sum(tr["wall_time"].values))                    # flagged runs cost time too
    hf = float(np.median(te["wall_time"].values[ok]))
    for name in ("rbf", "linear"):
        r = s.loc[name]
        assert r["generation_seconds"] == pytest.approx(gen, rel=1e-5)
        assert r["hf_seconds_generate"] == pytest.approx(hf, rel=1e-5)        # generate's figure, kept
        assert r["reduction_seconds"] == pytest.approx(0.25) and r["fit_seconds"] == pytest.approx(0.5)
        assert r["offline_seconds"] == pytest.approx(gen + 0.75, rel=1e-5)
        assert 0 < r["latency_seconds"] < r["hf_seconds"]
        assert r["speedup"] == pytest.approx(r["hf_seconds"] / r["latency_seconds"], rel=1e-4)
        # ceil(offline / saving), recomputed from the 6-digit CSV values
        exact = r["offline_seconds"] / (r["hf_seconds"] - r["latency_seconds"])
        assert r["break_even_queries"] == int(r["break_even_queries"])
        assert exact <= r["break_even_queries"] + 1e-3 < exact + 1 + 1e-3
        assert r["meets_error_bound"] == (r["rel_l2_mean"] <= EVALUATION["error_bound"])


def test_figures_and_html_summary(parametric):
    *_, out = parametric
    for stem in ("singular_values", "fields", "error_parameters", "error_split"):
        assert (out["figures"] / f"{stem}.png").stat().st_size > 1000
        assert (out["figures"] / f"{stem}.pdf").exists()
    html = (out["summary"].with_suffix(".html")).read_text()
    assert html.count("<tr>") == 3 and "rel_l2_mean" in html and "<table>" in html


def test_image_like_artists_rasterized_in_the_pdf(parametric, tmp_path):
    from surroflow.evaluation.figures import pyplot, rasterize_images, save
    *_, out = parametric
    pdf = (out["figures"] / "fields.pdf").read_bytes()          # x-t pcolormesh: an embedded image
    assert b"/Subtype /Image" in pdf and b"/Font" in pdf      # axes text stays vector
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2)
    x = np.linspace(0, 1, 200)
    a1.pcolormesh(x, x, np.outer(x, x))
    a2.plot(x, x)
    a2.scatter(x[:5], x[:5])                                  # sparse markers stay vector
    assert rasterize_images(fig) == 1
    assert a1.collections[0].get_rasterized() and not a2.collections[0].get_rasterized()
    assert not a2.lines[0].get_rasterized()
    png, path = save(fig, tmp_path / "f.png")
    vector = pyplot().figure()
    vector.gca().pcolormesh(x, x, np.outer(x, x))
    vector.savefig(tmp_path / "vector.pdf")                    # not through save: 200x200 vector quads
    assert b"/Subtype /Image" in path.read_bytes()
    assert path.stat().st_size < (tmp_path / "vector.pdf").stat().st_size / 5


def test_generation_seconds_nan_without_timings(tmp_path):
    train = _generate(tmp_path / "generate" / "train.nc", 16, 0, timed=False)
    test = _generate(tmp_path / "generate" / "test.nc", 4, 1, timed=False)
    basis, models = _fit_files(tmp_path, train, rank=3)
    out = _evaluate_files(tmp_path, train, test, basis, models[:1], {"name": "files", "settings": {}})
    r = pd.read_csv(out["summary"]).iloc[0]
    for col in ("generation_seconds", "hf_seconds", "hf_seconds_generate", "speedup", "offline_seconds",
                "break_even_queries"):
        assert math.isnan(r[col]), col
    assert r["latency_seconds"] > 0 and r["fit_seconds"] == pytest.approx(0.5)
    assert "<td>NaN</td>" in out["summary"].with_suffix(".html").read_text()


def test_model_with_other_inputs_is_refused(parametric, tmp_path):
    from surroflow import SurroflowError
    _, train, test, basis, models, _ = parametric
    ds = open_dataset(test)
    other = ds.assign_coords(parameter=["amplitude", "width"])
    write_dataset(other, tmp_path / "test.nc")
    with pytest.raises(SurroflowError, match="takes inputs"):
        _evaluate(tmp_path, train, tmp_path / "test.nc", basis, models[:1])


# =============================================================================== timing helpers
def test_break_even_and_speedup_edge_cases():
    from surroflow.evaluation.timing import break_even_queries, speedup
    assert break_even_queries(10.0, 2.0, 1.0) == 10
    assert break_even_queries(10.0, 1.0, 2.0) == math.inf
    assert math.isnan(break_even_queries(math.nan, 2.0, 1.0))
    assert math.isnan(break_even_queries(10.0, math.nan, 1.0))
    assert speedup(2.0, 0.5) == 4.0 and math.isnan(speedup(math.nan, 0.5))


def test_timings_hold_blas_to_the_job_threads(parametric, tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info

    from surroflow.evaluation import parametric as P
    _, train, test, basis, models, _ = parametric
    inside: list[list[int]] = []
    real = P.interleaved_seconds

    def spy(*args, **kwargs):
        inside.append([p["num_threads"] for p in threadpool_info()])
        return real(*args, **kwargs)
    monkeypatch.setattr(P, "interleaved_seconds", spy)
    _evaluate_files(tmp_path, train, test, basis, models[:1], None)
    assert len(inside) == 1 and inside[0] and all(n == 1 for n in inside[0])


def test_interleaved_seconds_order_and_medians():
    from surroflow.evaluation.timing import interleaved_seconds
    log: list[tuple[str, int]] = []

    def hf(s):
        log.append(("hf", s))
        time.sleep(0.02)

    def slow(s):                       # 20 ms: one call per timing loop
        log.append(("a", s))
        time.sleep(0.02)
    queries = {"a": slow, "b": lambda s: log.append(("b", s))}
    hf_s, q = interleaved_seconds(hf, queries, [0, 1], hf_samples=3, repeats=2)
    # untimed warm-up, then per round: the hf run and query a timed alike (sizing call + 2 loops
    # of 1 call), query b (sizing call + 2 loops of many calls), samples cycled
    assert log[:3] == [("hf", 0), ("a", 0), ("b", 0)]
    assert [e for e in log if e[0] == "hf"] == [("hf", 0)] * 4 + [("hf", 1)] * 3 + [("hf", 0)] * 3
    hf_at = [i for i, e in enumerate(log) if e[0] == "hf"][1::3]
    for r, start in enumerate(hf_at):
        end = hf_at[r + 1] if r + 1 < len(hf_at) else len(log)
        block = log[start:end]
        s = [0, 1, 0][r]
        assert block[:6] == [("hf", s)] * 3 + [("a", s)] * 3
        assert len(block) > 6 + 2 and set(block[6:]) == {("b", s)}
    assert 0.02 <= hf_s < 0.1 and set(q) == {"a", "b"}
    assert 0.02 <= q["a"] < 0.1 and 0 < q["b"] < 1e-3
    hf_s, q = interleaved_seconds(None, queries, [0], hf_samples=3, repeats=1)
    assert math.isnan(hf_s) and all(v > 0 for v in q.values())
    hf_s, q = interleaved_seconds(hf, queries, [], hf_samples=3, repeats=1)
    assert math.isnan(hf_s) and all(math.isnan(v) for v in q.values())


def test_best_seconds_is_the_fastest_loop_per_call(monkeypatch):
    """A call slowed down for a while (another process took the core) is timed at its
    undisturbed time: the first three of five loops are 10x slower, so their median would be
    ~10 ms per call and the fastest loop is 1 ms.  On a fake clock that only the calls advance
    (a real sleep overshoots on a loaded machine and changes the loop size)."""
    from surroflow.evaluation import timing
    clock = [0.0]
    calls = []
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])

    def fn():
        calls.append(1)
        clock[0] += 0.01 if 2 <= len(calls) <= 31 else 0.001
    t = timing.best_seconds(fn, repeats=5, min_seconds=0.01)
    assert len(calls) == 1 + 5 * 10                       # a sizing call of 1 ms, then loops of 10 calls
    assert t == pytest.approx(0.001)
    # a slow call (0.6 s, a batched query of a large model) gets one loop beside the sizing call
    calls.clear()

    def slow():
        calls.append(1)
        clock[0] += 0.6 if len(calls) == 1 else 0.5
    assert timing.best_seconds(slow, repeats=5, max_seconds=1.0) == pytest.approx(0.5) and len(calls) == 2
    # one of max_seconds or longer (a 1.7 s batched FNO query) is timed by the sizing call alone
    calls.clear()

    def slower():
        calls.append(1)
        clock[0] += 1.7
    assert timing.best_seconds(slower, repeats=5, max_seconds=1.0) == pytest.approx(1.7) and len(calls) == 1


# =============================================================================== forecast
LT63 = 1 / 0.9056


def _lorenz(n: int, seed: int, n_steps: int = 500, dt: float = 0.01, every: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) + np.array([0.0, 0.0, 25.0])

    def f(s):
        return np.column_stack([10 * (s[:, 1] - s[:, 0]), s[:, 0] * (28 - s[:, 2]) - s[:, 1],
                                s[:, 0] * s[:, 1] - 8 / 3 * s[:, 2]])

    def step(s):
        k1 = f(s)
        k2 = f(s + dt / 2 * k1)
        k3 = f(s + dt / 2 * k2)
        k4 = f(s + dt * k3)
        return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    for _ in range(1000):                                    # transient: 10 time units
        x = step(x)
    out = np.empty((n, n_steps, 3))
    for k in range(n_steps):
        out[:, k] = x
        for _ in range(every):
            x = step(x)
    return out


def _chaos_data(path: Path, n: int, seed: int, bad: int | None = None) -> Path:
    traj = _lorenz(n, seed)
    status = np.full(n, STATUS_OK, dtype="i1")
    if bad is not None:
        status[bad], traj[bad] = STATUS_FAILED, np.nan
    ds = xr.Dataset(
        {"state": (("sample", "time", "component"), traj), "design": (("sample", "parameter"), np.zeros((n, 1))),
         "status": (("sample",), status), "wall_time": (("sample",), np.full(n, 0.1))},
        coords={"sample": np.arange(n), "time": np.arange(traj.shape[1]) * 0.02, "component": ["x", "y", "z"],
                "parameter": ["rho"]},
        attrs=stamp({"lyapunov_time": LT63, "dt_sample": 0.02, "forecast_variable": "state", "split": path.stem},
                    "collect_batches", path, study="chaos"))
    return write_dataset(ds, path)


def _forecast_settings(**override):
    from surroflow.config import load_schema
    props = load_schema()["$defs"]["forecast"]["properties"]
    settings = {k: v["default"] for k, v in props.items()}
    settings.update(override)
    assert set(settings) == set(props)
    return settings


def _save_forecaster(model, path: Path, name: str, kind: str, state: str = "full") -> Path:
    from surroflow.surrogates.state import to_dataset
    return write_dataset(to_dataset(model, stamp({"model_name": name, "model_kind": kind, "state": state,
                                                  "dt_sample": 0.02, "fit_seconds": 0.1}, "train_forecaster", path,
                                                 study="chaos")), path)


@pytest.fixture(scope="module")
def forecast(tmp_path_factory):
    from surroflow.snapshots import trajectories
    from surroflow.stages import evaluate_forecast
    from surroflow.surrogates.registry import make_estimator
    root = tmp_path_factory.mktemp("forecast")
    train = _chaos_data(root / "generate" / "train.nc", 4, 0)
    test = _chaos_data(root / "generate" / "test.nc", 6, 7, bad=2)
    X = trajectories(open_dataset(train), "state")
    good = make_estimator("ngrc", {"alpha": 1e-8}, "forecaster").fit(X, dt=0.02)
    unstable = make_estimator("dmd", {"alpha": 1e-12}, "forecaster").fit(
        np.cumprod(np.full((1, 20, 3), 1.3), axis=1), dt=0.02)
    files = [_save_forecaster(good, root / "models" / "ngrc.nc", "ngrc", "ngrc"),
             _save_forecaster(unstable, root / "models" / "unstable.nc", "unstable", "dmd")]
    out = {"metrics": root / "evaluation" / "metrics.nc", "summary": root / "evaluation" / "summary.csv",
           "summary_html": root / "evaluation" / "summary.html", "figures": root / "evaluation" / "figures"}
    settings = _forecast_settings(horizon_lyapunov=3.0, stats_horizon_lyapunov=6.0, warmup=3,
                                  starts_per_trajectory=2, start_spacing_lyapunov=1.0, n_plot=1)
    ctx = context("evaluate_forecast", "chaos", forecast={**settings, "models": {
        "ngrc": {"kind": "ngrc", "params": {}, "state": "full"}, "unstable": {"kind": "dmd", "params": {}, "state": "full"}}})
    evaluate_forecast.run({"test": str(test), "models": [str(f) for f in files]},
                          {k: str(v) for k, v in out.items()}, ctx)
    return out


def test_forecast_baselines_always_present(forecast):
    ds = open_dataset(forecast["metrics"], stage="evaluate_forecast")
    assert list(ds["model"].values) == ["persistence", "climatology", "ngrc", "unstable"]
    assert ds.sizes["forecast"] == 10                       # 5 ok trajectories x 2 starts
    assert ds.attrs["n_excluded_test_samples"] == 1
    assert ds.attrs["horizon_steps"] == int(np.ceil(3.0 * LT63 / 0.02))
    df = pd.read_csv(forecast["summary"]).set_index("model")
    assert df.loc["persistence", "vpt_over_persistence"] == 1.0
    assert df.loc["persistence", "note"] == "fitted on test warm-up states (fit not timed)"
    assert math.isnan(df.loc["persistence", "fit_seconds"]) and df.loc["ngrc", "fit_seconds"] == pytest.approx(0.1)
    vpt = ds["vpt"].to_pandas().median(axis=1)
    assert vpt["ngrc"] > 2.0 > vpt["persistence"]
    assert bool(df.loc["ngrc", "beats_persistence"]) and df.loc["ngrc", "status"] == "ok"
    assert (df["n_test"] == 5).all() and (df["n_test_flagged"] == 1).all()


def test_forecast_diverging_model_labelled_not_dropped(forecast):
    ds = open_dataset(forecast["metrics"])
    df = pd.read_csv(forecast["summary"]).set_index("model")
    assert df.loc["unstable", "status"] == "diverged (10/10)" and df.loc["unstable", "n_diverged"] == 10
    assert ds["diverged"].sel(model="unstable").values.all()
    assert np.all(ds["vpt"].sel(model="unstable").values > 0)   # VPT up to the blow-up
    assert not ds["diverged"].sel(model="ngrc").values.any()


def test_forecast_figures_and_html(forecast):
    for stem in ("vpt", "error_growth", "spectra", "rollout_0", "invariant_measure"):
        assert (forecast["figures"] / f"{stem}.png").stat().st_size > 1000
        assert (forecast["figures"] / f"{stem}.pdf").exists()
    html = forecast["summary"].with_suffix(".html").read_text()
    assert html.count("<tr>") == 5 and "diverged (10/10)" in html


def test_forecast_model_of_other_size_is_refused(forecast, tmp_path):
    from surroflow import SurroflowError
    from surroflow.evaluation.forecast import load_forecasters
    from surroflow.surrogates.registry import make_estimator
    m = make_estimator("ngrc", {}, "forecaster").fit(np.random.default_rng(0).normal(size=(2, 50, 2)), dt=0.02)
    p = _save_forecaster(m, tmp_path / "two.nc", "two", "ngrc")
    with pytest.raises(SurroflowError, match="fitted on 2 components"):
        load_forecasters([str(p)], 3, 0.02)


def test_forecast_unknown_variable_is_refused(forecast, tmp_path):
    from surroflow import SurroflowError
    from surroflow.stages import evaluate_forecast
    test = forecast["metrics"].parents[1] / "generate" / "test.nc"
    ctx = context("evaluate_forecast", "chaos", forecast={**_forecast_settings(variable="u"), "models": {}})
    with pytest.raises(SurroflowError, match="forecast.variable='u'"):
        evaluate_forecast.run({"test": str(test), "models": []},
                              {"metrics": str(tmp_path / "m.nc"), "summary": str(tmp_path / "s.csv"),
                               "summary_html": str(tmp_path / "s.html"), "figures": str(tmp_path / "f")}, ctx)


def test_stage_times_the_study_simulator(parametric, tmp_path):
    """The stage passes the study's simulator section: the evaluate job runs it (one warm-up and
    hf_timing_samples timed samples) beside the queries, so the speed-up is measured."""
    root, train, test, basis, models, _ = parametric
    CALLS.clear()
    out = _evaluate(tmp_path, train, test, basis, models[:1])
    design = open_dataset(out["metrics"])["design"].values
    hf = [c[1] for c in CALLS if c[0] == "hf"]
    # the warm-up, then each of the hf_timing_samples first test samples timed (many runs of this
    # millisecond solver per timing loop), in order
    assert hf[0] == pytest.approx(design[0, 0]) and len(hf) > 1 + EVALUATION["hf_timing_samples"]
    assert sorted(set(np.round(hf, 12))) == sorted(set(np.round(design[:3, 0], 12)))
    assert (pd.read_csv(out["summary"])["speedup"] > 0).all()


def test_ensemble_scores_separate_the_forced_response_from_the_noise():
    """Members = a mean field + independent noise of std s: a model predicting the true mean has
    an ensemble error at the sampling error of the m-member mean (~ s / sqrt(m) relative), the
    noise floor is the members' relative noise, and against single members it is no better than
    the floor; a model with a 10% bias is told apart against the ensemble mean, barely against members."""
    from surroflow.evaluation.parametric import ensemble_scores
    rng = np.random.default_rng(0)
    n_pts, m, d, s = 20, 16, 200, 0.3
    mean = 1.0 + rng.normal(size=(n_pts, 1, d)) * 0.1
    members = (mean + s * rng.normal(size=(n_pts, m, d))).reshape(n_pts * m, 1, d)     # (sample, time, space)
    point = np.repeat(np.arange(n_pts), m)
    w = np.full(d, 1.0 / d)
    good = np.repeat(mean, m, axis=0)
    e = ensemble_scores(point, members, good, w)
    ref = np.sqrt(np.mean(mean[:, 0] ** 2, axis=1))
    np.testing.assert_allclose(e["floor"], s / np.sqrt(ref ** 2 + s ** 2), rtol=0.05)
    np.testing.assert_allclose(e["mean_noise"], s / np.sqrt(m) / ref, rtol=0.1)
    np.testing.assert_allclose(e["ensemble"], e["mean_noise"], rtol=0.25)
    biased = ensemble_scores(point, members, 1.1 * good, w)
    assert np.mean(biased["ensemble"]) > 1.3 * np.mean(e["ensemble"])
    single = lambda pred: np.mean(np.sqrt(np.sum((members - pred) ** 2 * w, (1, 2)) / np.sum(members ** 2 * w, (1, 2))))
    assert single(1.1 * good) < 1.3 * single(good)
    # a point left with one ok member (the others flagged) has no ensemble
    lone = ensemble_scores(point[m - 1:], members[m - 1:], good[m - 1:], w)
    assert np.isnan(lone["ensemble"][0]) and np.isnan(lone["floor"][0]) and np.isfinite(lone["ensemble"][1:]).all()
