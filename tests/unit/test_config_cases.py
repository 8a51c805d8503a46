"""Every config mistake is named before any job (issue 10, item 3).

One case per mistake that used to pass ``validate`` (or fail only when a stage ran): each must
now be a :class:`SurroflowError` whose message names the key path and what is allowed, from
``validate_config`` (what ``python -m surroflow validate`` and the Snakefile's DAG build run).
"""
from __future__ import annotations

import copy
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from surroflow import SurroflowError
from surroflow.cli import main
from surroflow.config import MAX_BATCHES, load_config, load_yaml_strict, validate_config
from surroflow.design import resolve_parameters
from surroflow.simulators import simulator_class
from surroflow.simulators.base import check_setting
from surroflow.surrogates.registry import (check_value, estimator_class, hyperparameter_names,
                                           hyperparameter_specs, kinds, make_estimator)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.snakemake_runner import snakemake  # noqa: E402  (the one way tests run snakemake)


def parametric(**study) -> dict:
    base = {"simulator": {"name": "burgers", "settings": {"n_x": 32, "n_time": 5}},
            "design": {"n_train": 4, "n_test": 2}, "surrogates": {"rbf": {"kind": "rbf"}}}
    for key, value in study.items():
        base[key] = {**base[key], **value} if isinstance(base.get(key), dict) and key != "surrogates" else value
    return {"studies": {"s": base}}


def forecast(**study) -> dict:
    base = {"task": "forecast", "simulator": {"name": "lorenz63"}, "design": {"n_train": 2, "n_test": 2},
            "forecast": {"models": {"dmd": {"kind": "dmd"}}}}
    for key, value in study.items():
        base[key] = {**base[key], **value} if isinstance(base.get(key), dict) else value
    return {"studies": {"f": base}}


def params(**ranges) -> dict:
    return {"simulator": {"parameters": ranges}}


CASES = {
    # ranges: finite, ordered, known, log-scaled bounds positive
    "infinite_range": (parametric(**params(amplitude=[0.5, math.inf])),
                       "studies.s.simulator.parameters.amplitude: [0.5, inf] is not allowed; both bounds must be finite"),
    "nan_range": (parametric(**params(amplitude=[math.nan, 1.0])),
                  "studies.s.simulator.parameters.amplitude: [nan, 1.0] is not allowed; both bounds must be finite"),
    "reversed_range": (parametric(**params(amplitude=[1.5, 0.5])),
                       "studies.s.simulator.parameters.amplitude: [1.5, 0.5] is not allowed; low must be < high "
                       "(declared range [0.5, 1.5] m s-1)"),
    "unknown_parameter": (parametric(**params(amplitud=[0.5, 1.0])),
                          "studies.s.simulator.parameters.amplitud: unknown parameter; allowed: "
                          "['amplitude', 'nu', 'shift']"),
    "log_scale_bound_not_positive": (parametric(**params(nu=[0.0, 0.1])),
                                     "studies.s.simulator.parameters.nu: [0.0, 0.1] is not allowed; nu is sampled "
                                     "on a log scale, which needs low > 0"),
    # surrogate and forecaster hyperparameter values
    "gp_negative_alpha": (parametric(surrogates={"gp": {"kind": "gaussian_process", "params": {"alpha": -1.0}}}),
                          "studies.s.surrogates.gp.params.alpha: -1.0 is not allowed for surrogate kind "
                          "'gaussian_process'; expected a finite number >= 0"),
    "gp_unknown_kernel": (parametric(surrogates={"gp": {"kind": "gaussian_process", "params": {"kernel": "rq"}}}),
                          "studies.s.surrogates.gp.params.kernel: 'rq' is not allowed for surrogate kind "
                          "'gaussian_process'; expected one of ['rbf', 'matern']"),
    "rbf_negative_smoothing": (parametric(surrogates={"r": {"kind": "rbf", "params": {"smoothing": -0.1}}}),
                               "studies.s.surrogates.r.params.smoothing: -0.1 is not allowed"),
    "linear_degree_wrong_type": (parametric(surrogates={"l": {"kind": "linear", "params": {"degree": "3"}}}),
                                 "studies.s.surrogates.l.params.degree: '3' is not allowed for surrogate kind "
                                 "'linear'; expected an integer >= 0"),
    "mlp_zero_width": (parametric(surrogates={"m": {"kind": "mlp", "params": {"hidden": [64, 0]}}}),
                       "studies.s.surrogates.m.params.hidden: [64, 0] is not allowed for surrogate kind 'mlp'; "
                       "expected a non-empty list of integers >= 1"),
    "fno_on_pod_coefficients": (parametric(surrogates={"f": {"kind": "mlp", "params": {"architecture": "fno"}}}),
                                "studies.s.surrogates.f.basis: a Fourier neural operator (architecture fno) maps the "
                                "inputs to the field on its grid; set basis: none (got 'global')"),
    "fno_trajectory": (parametric(surrogates={"f": {"kind": "mlp", "basis": "none", "formulation": "trajectory",
                                                    "params": {"architecture": "fno"}}}),
                       "studies.s.surrogates.f.formulation: architecture fno predicts one field per "
                       "(parameters, time) row; use auto or pointwise"),
    "members_of_a_deterministic_simulator": (parametric(design={"n_train": 4, "n_test": 2, "members": 4}),
                                             "studies.s.design.members: 4 realisations per point need a stochastic "
                                             "simulator; 'burgers' is deterministic (its members would be "
                                             "identical); use members: 1"),
    "dmd_rank_zero": (forecast(forecast={"models": {"dmd": {"kind": "dmd", "params": {"rank": 0}}}}),
                      "studies.f.forecast.models.dmd.params.rank: 0 is not allowed for forecaster kind 'dmd'; "
                      "expected an integer >= 1 or null"),
    "ngrc_float_delays": (forecast(forecast={"models": {"n": {"kind": "ngrc", "params": {"n_delays": 2.5}}}}),
                          "studies.f.forecast.models.n.params.n_delays: 2.5 is not allowed"),
    # reduction variables and forecast variable must be outputs of the simulator
    "unknown_reduction_variable": (parametric(reduction={"variables": ["v"]}),
                                   "studies.s.reduction.variables: ['v'] are not outputs of simulator 'burgers'; "
                                   "allowed: ['u']"),
    "unknown_forecast_variable": (forecast(forecast={"variable": "u", "models": {}}),
                                  "studies.f.forecast.variable: 'u' is not an output of simulator 'lorenz63'"),
    # the name 'linear' is the study's linear baseline (kind linear, degree 1)
    "linear_name_other_kind": (parametric(surrogates={"linear": {"kind": "rbf"}}),
                               "studies.s.surrogates.linear: the name 'linear' is the linear baseline of every "
                               "parametric study (kind linear, degree 1), not kind 'rbf'; give this surrogate "
                               "another name (e.g. 'poly')"),
    "linear_name_cubic": (parametric(surrogates={"linear": {"kind": "linear", "params": {"degree": 3}}}),
                          "studies.s.surrogates.linear: the name 'linear' is the linear baseline of every "
                          "parametric study (kind linear, degree 1), not degree 3"),
    # online learning: a model of the study that can learn online, on the full state
    "online_unknown_model": (forecast(forecast={"models": {"dmd": {"kind": "dmd"}}, "online": {"model": "rff"}}),
                             "studies.f.forecast.online.model: 'rff' is not a model of forecast.models; "
                             "defined: ['dmd']"),
    "online_batch_only_kind": (forecast(forecast={"models": {"dmd": {"kind": "dmd"}}, "online": {"model": "dmd"}}),
                               "studies.f.forecast.online.model: model 'dmd' is of kind 'dmd', which cannot learn "
                               "online; use a model of kind 'rff'"),
    "online_pod_state": (forecast(forecast={"models": {"r": {"kind": "rff", "state": "pod"}}, "online": {"model": "r"}}),
                         "studies.f.forecast.online.model: model 'r' steps the POD state"),
    "online_forgetting_range": (forecast(forecast={"models": {"r": {"kind": "rff"}},
                                                   "online": {"model": "r", "forgetting": 0.1}}),
                                "studies.f.forecast.online.forgetting: 0.1 violates minimum 0.5"),
    # a parametric study needs a surrogate (the schema default {} crashed the evaluation)
    "no_surrogate": (parametric(surrogates={}),
                     "studies.s.surrogates: a parametric study needs at least one surrogate"),
    # sample counts: a schema maximum, and at most MAX_BATCHES generation jobs per split
    "huge_n_test": (parametric(design={"n_test": 100000000}),
                    "studies.s.design.n_test: 100000000 violates maximum 1000000"),
    "too_many_batches": (parametric(design={"n_train": 200000, "batch_size": 16}),
                         f"studies.s.design.n_train: 200000 samples in batches of 16 make 12500 generation jobs, "
                         f"more than {MAX_BATCHES}; set studies.s.design.batch_size >= 20"),
    "too_many_calibration_batches": (parametric(design={"n_calibration": 200000, "batch_size": 16}),
                                     "studies.s.design.n_calibration: 200000 samples in batches of 16 make 12500 "
                                     "generation jobs"),
    "negative_n_calibration": (parametric(design={"n_calibration": -1}),
                               "studies.s.design.n_calibration: -1 violates minimum 0"),
    # a forecast study has no conformal band: a calibration design would be runs spent for nothing
    "forecast_n_calibration": (forecast(design={"n_calibration": 8}),
                               "studies.f.design.n_calibration: a forecast study has no conformal band to calibrate"),
    # simulator settings the run used to reject (or convert silently) after validate said "valid"
    "lorenz63_string_dt": (forecast(simulator={"settings": {"dt": "0.01"}}),
                           "studies.f.simulator.settings.dt: expected a finite number > 0, got '0.01'"),
    "lorenz63_float_n_steps": (forecast(simulator={"settings": {"n_steps": 10.5}}),
                               "studies.f.simulator.settings.n_steps: expected an integer > 0, got 10.5"),
    "lorenz96_small_N": (forecast(simulator={"name": "lorenz96", "settings": {"N": 3}}),
                         "studies.f.simulator.settings.N: expected an integer >= 4, got 3"),
    "ks_string_n_x": (forecast(simulator={"name": "kuramoto_sivashinsky", "settings": {"n_x": "64"}}),
                      "studies.f.simulator.settings.n_x: expected an integer > 0, got '64'"),
    "ks_unknown_setting": (forecast(simulator={"name": "kuramoto_sivashinsky", "settings": {"length": 22}}),
                           "studies.f.simulator.settings.length: unknown setting of simulator 'kuramoto_sivashinsky'"),
    "burgers_bool_n_time": (parametric(simulator={"settings": {"n_time": True}}),
                            "studies.s.simulator.settings.n_time: expected an integer >= 2, got True"),
    "advection_nan_x0": (parametric(simulator={"name": "advection_diffusion", "settings": {"x0": math.nan}}),
                         "studies.s.simulator.settings.x0: expected a finite number, got nan"),
    # checked before the ccx look-up: an error even where CalculiX is not installed
    "calculix_template_not_a_path": (parametric(simulator={"name": "calculix_plate",
                                                           "settings": {"template": 3, "ccx": "no-such-ccx"}}),
                                     "studies.s.simulator.settings.template: expected a non-empty string (a path) "
                                     "or null, got 3"),
    "calculix_workdir_not_a_path": (parametric(simulator={"name": "calculix_plate",
                                                          "settings": {"workdir_root": 5, "ccx": "no-such-ccx"}}),
                                    "studies.s.simulator.settings.workdir_root: expected a non-empty string"),
    "files_table_not_a_path": (parametric(simulator={"name": "files", "settings": {
        "table": 3, "parameters": ["a"], "variables": ["u"]}}),
        "studies.s.simulator.settings.table: expected a non-empty string (a path), got 3"),
    "study_name_case_clash": ({"studies": {**parametric()["studies"], "S": parametric()["studies"]["s"]}},
                              "studies.S: the name differs from study 's' only in case"),
}


# --------------------------------------------------------------------------- external and calculix settings
def external_settings(folder: Path, **over) -> dict:
    """A valid ``external`` study's settings (its template in ``folder``), with ``over`` applied."""
    (folder / "model.tpl").write_text("a = $a\nc = $c\n")
    (folder / "extra.txt").write_text("x\n")
    s = {"command": [sys.executable, "-c", "pass"], "template": str(folder / "model.tpl"), "reader": "netcdf",
         "parameters": {"a": {"low": 0, "high": 1}}, "constants": {"c": 2.5},
         "outputs": {"y": {"dims": ["x"]}}, "coordinates": {"x": {"size": 3}},
         "files": [str(folder / "extra.txt")], "workdir_root": str(folder / "runs")}
    s.update(over)
    return s


def one_study(name: str, settings: dict) -> dict:
    return parametric(simulator={"name": name, "settings": settings})


#: external setting -> (the wrong value, what the message says after the key path)
EXTERNAL_CASES = {
    "template": (3, "expected a non-empty string (a path), got 3"),
    "input_name": (5, "expected a non-empty string or null, got 5"),
    "input_name_folder": ({"input_name": "../job.in"}, "'../job.in' is not allowed; a plain file name"),
    "workdir_root": (["runs"], "expected a non-empty string (a path) or null, got ['runs']"),
    "reader": (3, "expected a non-empty string, got 3"),
    "reader_unknown": ({"reader": "nope"}, "unknown result reader 'nope'"),
    "env": (["a"], "expected a mapping of environment variable names to strings, got ['a']"),
    "env_value": ({"env": {"OMP_NUM_THREADS": 2}}, "expected a string, got 2"),
    "coordinates": ({"coordinates": {"x": {"size": "3"}}}, "expected an integer >= 1, got '3'"),
    "coordinates_entry": ({"coordinates": {"x": [0, 1, 2]}}, "expected a mapping {values: [...]} or {size: n}"),
    "coordinates_values": ({"coordinates": {"x": {"values": "abc"}}}, "expected a non-empty list of numbers"),
    "timeout_s": ("x", "expected a finite number > 0 or null, got 'x'"),
    "retries": (1.5, "expected an integer >= 0, got 1.5"),
    "keep_workdirs": ("some", "expected one of ['failed', 'all', 'none'], got 'some'"),
    "command": ("ccx -i job", "expected a non-empty list of strings"),
    "command_program": ({"command": ["", "x"]}, "expected a program name or path"),
    "files": ("extra.txt", "expected a list of paths of static files, got 'extra.txt'"),
    "files_item": ({"files": [3]}, "expected a non-empty string (a path), got 3"),
    "constants": ([1], "expected a mapping of names to numbers, got [1]"),
    "constants_value": ({"constants": {"c": "2.5"}}, "expected a finite number, got '2.5'"),
    "parameters_entry": ({"parameters": {"a": [0, 1]}}, "expected a mapping {low, high"),
    "parameters_low": ({"parameters": {"a": {"low": "0", "high": 1}}}, "expected a finite number, got '0'"),
    "parameters_log_scale": ({"parameters": {"a": {"low": 1, "high": 2, "log_scale": "yes"}}},
                             "expected true or false, got 'yes'"),
    "outputs_entry": ({"outputs": {"y": ["x"]}}, "expected a mapping {dims, units, long_name}"),
    "outputs_dims": ({"outputs": {"y": {"dims": "x"}}}, "expected a list of distinct dimension names"),
    "time_dim": ({"time_dim": "t"}, "'t' is not a dimension of any output; allowed: ['x'] or null"),
    "unknown": ({"shell": True}, "unknown setting of simulator 'external'"),
}
#: the key path each external case names (after studies.s.simulator.settings.)
EXTERNAL_KEYS = {"input_name_folder": "input_name", "reader_unknown": "reader", "env_value": "env.OMP_NUM_THREADS",
                 "coordinates": "coordinates.x.size", "coordinates_entry": "coordinates.x",
                 "coordinates_values": "coordinates.x.values", "command_program": "command[0]",
                 "files_item": "files[0]", "constants_value": "constants.c", "parameters_entry": "parameters.a",
                 "parameters_low": "parameters.a.low", "parameters_log_scale": "parameters.a.log_scale",
                 "outputs_entry": "outputs.y", "outputs_dims": "outputs.y.dims", "unknown": "shell"}


def _no_raw_error(text: str) -> None:
    assert not any(w in text for w in ("TypeError", "AttributeError", "Traceback")), text


@pytest.mark.parametrize("case", sorted(EXTERNAL_CASES))
def test_each_external_setting_mistake_is_named(case, tmp_path):
    """validate and the run (the constructor) refuse the same thing with the same sentence,
    naming the key path; never a raw TypeError/AttributeError."""
    value, what = EXTERNAL_CASES[case]
    over = value if isinstance(value, dict) else {case: value}
    settings = external_settings(tmp_path, **over)
    key = f"simulator.settings.{EXTERNAL_KEYS.get(case, case)}: "
    with pytest.raises(SurroflowError) as err:
        validate_config(one_study("external", settings))
    assert f"\n  - studies.s.{key}{what}" in str(err.value), str(err.value)
    assert "1 invalid setting(s)" in str(err.value)
    _no_raw_error(str(err.value))
    with pytest.raises(SurroflowError) as run_err:
        simulator_class("external")(**settings)
    assert str(run_err.value).startswith(f"{key}{what}"), str(run_err.value)


def test_a_valid_external_study_passes_and_is_unchanged(tmp_path):
    notes: list[str] = []
    cfg = validate_config(one_study("external", external_settings(tmp_path)), notes=notes)
    assert notes == []
    sim = simulator_class("external")(**cfg["studies"]["s"]["simulator"]["settings"])
    assert (sim.runner.timeout_s, sim.runner.retries, sim.runner.keep_workdirs) == (600.0, 0, "failed")
    assert sim.runner.input_name == "model.tpl" and set(sim.runner.files) == {"extra.txt"}
    # a missing program is a note (the study is skipped), its settings checked all the same
    notes = []
    validate_config(one_study("external", external_settings(tmp_path, command=["surroflow-no-such-solver"])),
                    notes=notes)
    assert len(notes) == 1 and "not found on PATH" in notes[0]
    with pytest.raises(SurroflowError, match=r"studies.s.simulator.settings.retries: expected an integer >= 0"):
        validate_config(one_study("external", external_settings(tmp_path, command=["surroflow-no-such-solver"],
                                                                 retries=-1)))


#: calculix settings that go to the CommandRunner: (value, message after the key path)
CALCULIX_CASES = {
    "timeout_s": ("x", "expected a finite number > 0 or null, got 'x'"),
    "retries": (True, "expected an integer >= 0, got True"),
    "keep_workdirs": ("some", "expected one of ['failed', 'all', 'none'], got 'some'"),
    "threads": (1.5, "expected an integer >= 1, got 1.5"),
    "ccx": (3, "expected a non-empty string, got 3"),
    "workdir_root": (["runs"], "expected a non-empty string (a path) or null, got ['runs']"),
    "template": (3, "expected a non-empty string (a path) or null, got 3"),
}


@pytest.mark.parametrize("case", sorted(CALCULIX_CASES))
def test_each_calculix_runner_setting_mistake_is_named(case):
    """Checked before the ccx look-up: an error even where CalculiX is not installed."""
    value, what = CALCULIX_CASES[case]
    settings = {"ccx": "surroflow-no-such-ccx", case: value}
    with pytest.raises(SurroflowError) as err:
        validate_config(one_study("calculix_plate", settings))
    assert f"\n  - studies.s.simulator.settings.{case}: {what}" in str(err.value), str(err.value)
    _no_raw_error(str(err.value))
    with pytest.raises(SurroflowError) as run_err:
        simulator_class("calculix_plate")(**settings)
    assert str(run_err.value) == f"simulator.settings.{case}: {what}"


def test_safe_mode_reports_each_refusal_once(tmp_path, monkeypatch):
    """A study that safe mode refuses is not built (nothing imported or looked up) and each
    refusal is one line, from safety.config_problems; other studies are still checked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SURROFLOW_SAFE_MODE", "1")
    monkeypatch.delenv("SURROFLOW_ALLOWED_COMMANDS", raising=False)
    (tmp_path / "evil_refused_mod.py").write_text("import pathlib\npathlib.Path('imported.marker').write_text('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = one_study("external", external_settings(tmp_path, command=["/bin/sh", "{input}"], workdir_root="runs"))
    cfg["studies"]["p"] = {**copy.deepcopy(cfg["studies"]["s"]),
                           "simulator": {"name": "python:evil_refused_mod:Sim"}}
    cfg["studies"]["b"] = parametric(simulator={"settings": {"n_x": 2}})["studies"]["s"]
    with pytest.raises(SurroflowError) as err:
        validate_config(cfg)
    lines = [line for line in str(err.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 3, lines
    assert sum("studies.s.simulator.settings.command[0]: program '/bin/sh' is not on the safe-mode "
               "allow-list" in line for line in lines) == 1, lines
    assert sum("studies.p.simulator.name: 'python:evil_refused_mod:Sim' imports code" in line
               for line in lines) == 1, lines
    assert sum("studies.b.simulator.settings.n_x: expected an integer >= 8, got 2" in line for line in lines) == 1
    assert not (tmp_path / "imported.marker").exists()


def test_validate_does_not_import_a_python_reader_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil_reader_mod.py").write_text("import pathlib\npathlib.Path('imported.marker').write_text('x')\n"
                                                 "def read(wd, job):\n    return {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = one_study("external", external_settings(tmp_path, reader="python:evil_reader_mod:read"))
    notes: list[str] = []
    validate_config(copy.deepcopy(cfg), notes=notes, import_modules=False)
    assert not (tmp_path / "imported.marker").exists()
    assert len(notes) == 1 and notes[0].startswith(
        "studies.s.simulator.settings.reader: 'python:evil_reader_mod:read' was not imported"), notes
    validate_config(cfg, import_modules=True)
    assert (tmp_path / "imported.marker").exists()
    sys.modules.pop("evil_reader_mod", None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_mistake_is_named_by_validate(case):
    config, expected = CASES[case]
    with pytest.raises(SurroflowError) as err:
        validate_config(copy.deepcopy(config))
    assert expected in str(err.value), str(err.value)


def test_every_problem_of_a_file_is_reported_together():
    cfg = parametric(**params(amplitude=[0.5, math.inf], nu=[0.0, 0.1]), reduction={"variables": ["v"]},
                     surrogates={"r": {"kind": "rbf", "params": {"smoothing": -1.0, "neighbors": 0}}})
    with pytest.raises(SurroflowError) as err:
        validate_config(cfg)
    msg = str(err.value)
    assert "5 invalid setting(s)" in msg, msg
    for key in ("simulator.parameters.amplitude", "simulator.parameters.nu", "reduction.variables",
                "surrogates.r.params.smoothing", "surrogates.r.params.neighbors"):
        assert f"\n  - studies.s.{key}: " in msg, (key, msg)


def test_a_forecast_study_may_leave_models_empty():
    """The persistence and climatology baselines are always trained and evaluated, so an empty
    ``forecast.models`` is a valid (baselines-only) study, unlike an empty ``surrogates``."""
    from surroflow.config import forecast_models
    cfg = validate_config(forecast(forecast={"models": {}}))
    assert list(forecast_models(cfg["studies"]["f"])) == ["persistence", "climatology"]


def test_the_run_applies_the_same_checks():
    """make_design and make_estimator refuse what validate refuses, with the same sentence."""
    sim = simulator_class("burgers")()
    with pytest.raises(SurroflowError, match=r"simulator.parameters.nu: \[0.0, 0.1\] is not allowed; nu is "
                                             r"sampled on a log scale"):
        resolve_parameters(sim.parameters(), {"nu": [0.0, 0.1]})
    with pytest.raises(SurroflowError, match=r"w.params.alpha: -1.0 is not allowed"):
        make_estimator("linear", {"alpha": -1.0}, "surrogate", where="w")
    with pytest.raises(SurroflowError, match=r"simulator.settings.dt: expected a finite number > 0"):
        simulator_class("lorenz63")(dt="0.01")


def test_every_hyperparameter_has_a_spec_the_defaults_satisfy():
    import inspect
    for family in ("surrogate", "forecaster"):
        for kind in kinds(family):
            cls = estimator_class(kind, family)
            specs = hyperparameter_specs(kind, family)
            assert set(specs) == set(hyperparameter_names(kind, family)), kind
            assert specs == dict(getattr(cls, "hyperparameter_specs", {})), kind
            for name, p in inspect.signature(cls.__init__).parameters.items():
                if name in specs and p.default is not inspect.Parameter.empty:
                    default = list(p.default) if isinstance(p.default, tuple) else p.default
                    assert check_value(specs[name], default), (kind, name, default)


def test_check_setting_is_the_one_typed_check():
    assert check_setting("n", 3, "int", minimum=1) == 3 and check_setting("x", None, "float", nullable=True) is None
    for value in (2.0, True, "3", None):
        with pytest.raises(SurroflowError, match="simulator.settings.n: expected an integer >= 1"):
            check_setting("n", value, "int", minimum=1)
    with pytest.raises(SurroflowError, match=r"simulator.settings.k: expected one of \['a', 'b'\], got 'c'"):
        check_setting("k", "c", "choice", choices=("a", "b"))


# --------------------------------------------------------------------------- YAML files
def test_duplicate_keys_are_refused_with_file_and_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("studies:\n  s:\n    simulator: {name: burgers}\n    design: {n_train: 4, n_test: 2, n_train: 8}\n")
    with pytest.raises(SurroflowError, match=rf"{path}:4: duplicate key 'n_train' \(also on line 4\)"):
        load_yaml_strict(path)
    with pytest.raises(SurroflowError, match="duplicate key 'n_train'"):
        load_config(path)


def test_duplicate_study_names_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    study = "    simulator: {name: burgers}\n    design: {n_train: 4, n_test: 2}\n    surrogates: {r: {kind: rbf}}\n"
    path.write_text(f"studies:\n  a:\n{study}  a:\n{study}")
    assert main(["validate", str(path)]) == 2
    with pytest.raises(SurroflowError, match=rf"{path}:6: duplicate key 'a' \(also on line 2\)"):
        load_config(path)


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("studies: [\n")
    with pytest.raises(SurroflowError, match=rf"{path}: cannot read YAML"):
        load_yaml_strict(path)


# --------------------------------------------------------------------------- validate does not run code
EVIL = "import pathlib\npathlib.Path('imported.marker').write_text('x')\n" \
       "from surroflow.simulators.burgers import Burgers1D\nclass Sim(Burgers1D):\n    name = 'evil'\n"


def _user_module_config(tmp_path: Path) -> Path:
    (tmp_path / "evil_sim_mod.py").write_text(EVIL)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("studies:\n  s:\n    simulator: {name: 'python:evil_sim_mod:Sim', settings: {n_x: 2}}\n"
                   "    design: {n_train: 4, n_test: 2}\n    surrogates: {r: {kind: rbf}}\n")
    return cfg


def _validate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surroflow", "validate", str(tmp_path / "cfg.yaml"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_validate_imports_no_user_module_unless_asked(tmp_path):
    _user_module_config(tmp_path)
    res = _validate(tmp_path)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "imported.marker").exists(), "validate imported the user's module"
    assert "note: studies.s.simulator.name: 'python:evil_sim_mod:Sim' was not imported" in res.stdout
    assert "settings, parameters and outputs were not checked" in res.stdout
    res = _validate(tmp_path, "--import")
    assert (tmp_path / "imported.marker").exists()
    assert res.returncode == 2 and "studies.s.simulator.settings.n_x: expected an integer >= 8, got 2" in res.stderr
    assert "Traceback" not in res.stderr


def test_validate_safe_turns_safe_mode_on(tmp_path):
    _user_module_config(tmp_path)
    res = _validate(tmp_path, "--safe")
    assert res.returncode == 2, res.stdout
    assert "studies.s.simulator.name" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "imported.marker").exists()


# --------------------------------------------------------------------------- snakemake -n
def test_snakemake_dry_run_refuses_a_huge_sample_count_quickly(tmp_path):
    cfg = parametric(design={"n_test": 100000000})
    cfg["results"] = "results"
    start = time.monotonic()
    res = snakemake(tmp_path, cfg, "-n", timeout=120)
    took = time.monotonic() - start
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "studies.s.design.n_test: 100000000 violates maximum 1000000" in out, out[-3000:]
    assert "Traceback" not in out and not (tmp_path / "results").exists()
    assert took < 60, took


def test_a_trajectory_formulation_on_local_bases_is_refused_before_any_job():
    from surroflow import SurroflowError
    from surroflow.config import validate_config
    cfg = {"studies": {"s": {"task": "parametric", "simulator": {"name": "advection_diffusion"},
                             "design": {"n_train": 8, "n_test": 2},
                             "reduction": {"clustering": {"n_clusters": 2}},
                             "surrogates": {"r": {"kind": "rbf", "basis": "local", "formulation": "trajectory"}}}}}
    with pytest.raises(SurroflowError, match=r"studies\.s\.surrogates\.r\.formulation: 'trajectory' needs a global basis"):
        validate_config(cfg)
