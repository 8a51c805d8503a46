"""The config schema: every shipped config validates; violations are named; defaults filled."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from surroflow import SurroflowError
from surroflow.config import (SCHEMA_DIR, STAGE_SECTIONS, load_config, load_schema, schema_markdown, stage_sections,
                              validate_config)
from surroflow.simulators import SimulatorUnavailable, register
from surroflow.simulators.burgers import Burgers1D
from surroflow.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "tests" / "config").glob("*.yaml")) + sorted((ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    for study in cfg["studies"].values():
        assert "reduction" in study and "evaluation" in study  # defaults filled


def _minimal():
    return {"studies": {"s": {"simulator": {"name": "burgers"}, "design": {"n_train": 4, "n_test": 2},
                              "surrogates": {"rbf": {"kind": "rbf"}}}}}


def test_defaults_are_filled():
    cfg = validate_config(_minimal())
    s = cfg["studies"]["s"]
    assert s["task"] == "parametric"
    assert s["design"]["method"] == "sobol" and s["design"]["batch_size"] == 16
    assert s["reduction"]["method"] == "exact" and s["reduction"]["energy"] == 0.9999
    assert cfg["dask"]["kind"] == "local"


def test_every_parametric_study_gets_the_linear_baseline_first():
    cfg = validate_config(_minimal())
    surrogates = cfg["studies"]["s"]["surrogates"]
    assert list(surrogates) == ["linear", "rbf"]
    assert surrogates["linear"]["kind"] == "linear" and surrogates["linear"]["params"] == {"degree": 1}
    # the config's own baseline (its alpha) is kept, moved first; forecast studies get none
    mine = _minimal()
    mine["studies"]["s"]["surrogates"]["linear"] = {"kind": "linear", "params": {"alpha": 0.1}}
    mine["studies"]["f"] = {"task": "forecast", "simulator": {"name": "lorenz63"}, "design": {"n_train": 2, "n_test": 1},
                            "forecast": {"models": {"dmd": {"kind": "dmd"}}}}
    cfg = validate_config(mine)
    assert list(cfg["studies"]["s"]["surrogates"]) == ["linear", "rbf"]
    assert cfg["studies"]["s"]["surrogates"]["linear"]["params"] == {"alpha": 0.1}
    assert not cfg["studies"]["f"]["surrogates"]


def test_all_violations_are_reported_with_key_paths():
    cfg = _minimal()
    cfg["studies"]["s"]["design"]["n_train"] = 0
    cfg["studies"]["s"]["design"]["methd"] = "lhs"
    cfg["studies"]["s"]["surrogates"] = {"m": {"kind": "svm"}}
    cfg["dask"] = {"kind": "k8s"}
    with pytest.raises(SurroflowError) as err:
        validate_config(cfg)
    msg = str(err.value)
    assert "4 invalid setting(s)" in msg
    assert "studies.s.design.n_train: 0 violates minimum 1" in msg
    assert "studies.s.design: unknown key(s) ['methd']" in msg
    assert "studies.s.surrogates.m.kind: 'svm' is not allowed" in msg and "gaussian_process" in msg
    assert "dask.kind: 'k8s' is not allowed" in msg


def test_unknown_simulator_and_wrong_task():
    cfg = _minimal()
    cfg["studies"]["s"]["simulator"]["name"] = "navier_stokes"
    with pytest.raises(SurroflowError, match=r"studies.s.simulator.name: 'navier_stokes' is not allowed; allowed: \[.*"
                                             r"'python:package.module:Class'.*entry-point group 'surroflow.simulators'"):
        validate_config(cfg)
    cfg = _minimal()
    cfg["studies"]["s"]["task"] = "forecast"
    with pytest.raises(SurroflowError, match="studies.s.task: simulator 'burgers' supports"):
        validate_config(cfg)


def test_every_schema_key_has_description_and_default():
    schema = load_schema()
    missing = []

    def walk(s, path, required=()):
        if not isinstance(s, dict):
            return
        for key, sub in (s.get("properties") or {}).items():
            p = f"{path}.{key}"
            if "description" not in sub:
                missing.append(f"{p}: description")
            if "default" not in sub and key not in required and "$ref" not in sub:
                missing.append(f"{p}: default")
            walk(sub, p, tuple(sub.get("required", ())))
    walk(schema, "", tuple(schema.get("required", ())))
    for name, d in schema["$defs"].items():
        walk(d, f"$defs.{name}", tuple(d.get("required", ())))
    assert not missing, missing


def test_config_readme_documents_every_key():
    text = (ROOT / "config" / "README.md").read_text()
    table = schema_markdown()
    missing = [line.split("|")[1].strip() for line in table.splitlines()[2:] if line.split("|")[1].strip() not in text]
    assert not missing, f"config/README.md lacks {missing}; regenerate with `python -m surroflow config-docs`"


def test_stage_sections_isolate_unrelated_changes():
    study = validate_config(_minimal())["studies"]["s"]
    a = stage_sections(study, "collect_batches")
    study2 = yaml.safe_load(yaml.safe_dump(study))
    study2["evaluation"]["n_plot_samples"] = 7
    assert stage_sections(study2, "collect_batches") == a
    assert stage_sections(study2, "evaluate_surrogates") != stage_sections(study, "evaluate_surrogates")


def test_stage_sections_keyed_by_rule_names():
    text = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    rules = re.findall(r"^(?:rule|checkpoint) (\w+):", text, re.M)
    assert sorted(rules) == sorted(STAGE_SECTIONS) == sorted(STAGES)
    for rule in rules:
        assert (ROOT / "workflow" / "scripts" / f"{rule}.py").exists()


def test_failure_fraction_reruns_no_simulation():
    study = validate_config(_minimal())["studies"]["s"]
    study2 = yaml.safe_load(yaml.safe_dump(study))
    study2["simulator"]["max_failure_fraction"] = 0.5
    for stage in ("make_design", "generate_batch", "fit_pod", "train_surrogate", "evaluate_surrogates"):
        name = "m" if stage == "train_surrogate" else None
        study["surrogates"] = study2["surrogates"] = {"m": {"kind": "rbf", "params": {}, "basis": "global"}}
        assert stage_sections(study, stage, name) == stage_sections(study2, stage, name), stage
        assert "max_failure_fraction" not in stage_sections(study, stage, name)["simulator"]
    assert stage_sections(study, "collect_batches") != stage_sections(study2, "collect_batches")


def _forecast_study():
    cfg = {"studies": {"f": {"task": "forecast", "simulator": {"name": "lorenz63"},
                             "design": {"n_train": 2, "n_test": 2},
                             "forecast": {"models": {"dmd": {"kind": "dmd"},
                                                     "ngrc": {"kind": "ngrc", "params": {"alpha": 1e-6}}}}}}}
    return validate_config(cfg)["studies"]["f"]


def test_train_forecaster_depends_on_its_own_model_only():
    study = _forecast_study()
    dmd = stage_sections(study, "train_forecaster", "dmd")
    assert "models" not in dmd["forecast"] and dmd["model"] == {"dmd": {"kind": "dmd", "params": {}, "state": "inherit"}}
    base = stage_sections(study, "train_forecaster", "persistence")
    assert base["model"] == {"persistence": {"kind": "persistence", "params": {}, "state": "full"}}
    changed = yaml.safe_load(yaml.safe_dump(study))
    changed["forecast"]["models"]["ngrc"]["params"]["alpha"] = 1e-3
    assert stage_sections(changed, "train_forecaster", "dmd") == dmd
    assert stage_sections(changed, "train_forecaster", "ngrc") != stage_sections(study, "train_forecaster", "ngrc")
    assert stage_sections(changed, "evaluate_forecast") != stage_sections(study, "evaluate_forecast")
    changed["forecast"]["vpt_threshold"] = 0.3           # a scoring setting: training keeps its hash
    assert stage_sections(changed, "train_forecaster", "dmd")["forecast"]["vpt_threshold"] == 0.3
    with pytest.raises(SurroflowError, match="forecast.models: no model 'lstm'"):
        stage_sections(study, "train_forecaster", "lstm")


def test_unknown_stage_is_an_error():
    study = validate_config(_minimal())["studies"]["s"]
    with pytest.raises(SurroflowError, match="stage 'forecast_train' is unknown"):
        stage_sections(study, "forecast_train")


def test_schema_is_package_data():
    assert SCHEMA_DIR.joinpath("config.schema.yaml").is_file()
    assert "surroflow" in str(SCHEMA_DIR) and "workflow" not in str(SCHEMA_DIR)
    red = load_schema()["$defs"]["reduction"]["properties"]
    assert red["memory_budget_mb"]["default"] is None and "streaming" in red["method"]["enum"]
    assert validate_config(_minimal())["studies"]["s"]["reduction"]["memory_budget_mb"] is None


def test_unknown_hyperparameter_is_named_before_any_job():
    cfg = _minimal()
    cfg["studies"]["s"]["surrogates"] = {"g": {"kind": "gaussian_process", "params": {"lenght_scale": 1.0}}}
    with pytest.raises(SurroflowError, match=r"studies.s.surrogates.g: unknown hyperparameter\(s\) \['lenght_scale'\]"):
        validate_config(cfg)
    f = {"studies": {"f": {"task": "forecast", "simulator": {"name": "lorenz63"}, "design": {"n_train": 2, "n_test": 2},
                           "forecast": {"models": {"d": {"kind": "dmd", "params": {"rnak": 3}}}}}}}
    with pytest.raises(SurroflowError, match=r"studies.f.forecast.models.d: unknown hyperparameter\(s\) \['rnak'\]"):
        validate_config(f)


def test_bad_simulator_setting_is_named():
    cfg = _minimal()
    cfg["studies"]["s"]["simulator"]["settings"] = {"n_xx": 64}
    with pytest.raises(SurroflowError, match=r"studies.s.simulator.settings.n_xx: unknown setting"):
        validate_config(cfg)


def test_local_basis_needs_clustering():
    cfg = _minimal()
    cfg["studies"]["s"]["surrogates"] = {"r": {"kind": "rbf", "basis": "local"}}
    with pytest.raises(SurroflowError, match=r"studies.s.surrogates.r.basis: 'local' needs reduction.clustering"):
        validate_config(cfg)


class _Unavailable(Burgers1D):
    name = "test_unavailable_solver"

    def __init__(self, **settings):
        raise SimulatorUnavailable("the solver 'nosuchsolver' is not installed")


def test_unavailable_simulator_is_a_note_not_an_error():
    register(_Unavailable)
    cfg = _minimal()
    cfg["studies"]["s"]["simulator"]["name"] = "test_unavailable_solver"
    notes = []
    out = validate_config(cfg, notes=notes)
    assert out["studies"]["s"]["simulator"]["name"] == "test_unavailable_solver"
    assert notes == ["studies.s: skipped on this machine: the solver 'nosuchsolver' is not installed"]


def test_config_readme_simulator_table_is_the_generated_one():
    """config/README.md's simulator table is what `config-docs --update` writes from the code:
    parameters, outputs and settings as the simulators declare and check them."""
    import shutil

    from surroflow.cli import SIM_BEGIN, SIM_END, simulators_markdown
    text = (ROOT / "config" / "README.md").read_text()
    block = text.split(SIM_BEGIN, 1)[1].split(SIM_END, 1)[0].strip("\n").splitlines()
    fresh = simulators_markdown().strip("\n").splitlines()
    # without ccx the CalculiX row cannot say its settings' types: compare the others
    skip = () if shutil.which("ccx") else ("| `calculix_plate` |",)
    keep = [line for line in fresh if not line.startswith(skip)]
    assert [line for line in block if not line.startswith(skip)] == keep, \
        "config/README.md's simulator table drifted; regenerate with `python -m surroflow config-docs --update config/README.md`"
    assert any(line.startswith("| `burgers` |") and "`n_x` (int >= 8; 256)" in line for line in block)
