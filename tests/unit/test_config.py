"""The config schema: every shipped config validates; violations are named; defaults filled."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from surroflow import SurroflowError
from surroflow.config import load_config, load_schema, schema_markdown, stage_sections, validate_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "tests" / "config").glob("*.yaml")) + sorted((ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    for study in cfg["studies"].values():
        assert "reduction" in study and "evaluation" in study  # defaults filled


def _minimal():
    return {"studies": {"s": {"simulator": {"name": "burgers"}, "design": {"n_train": 4, "n_test": 2}}}}


def test_defaults_are_filled():
    cfg = validate_config(_minimal())
    s = cfg["studies"]["s"]
    assert s["task"] == "parametric"
    assert s["design"]["method"] == "sobol" and s["design"]["batch_size"] == 16
    assert s["reduction"]["method"] == "exact" and s["reduction"]["energy"] == 0.9999
    assert cfg["dask"]["kind"] == "local"


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
    with pytest.raises(SurroflowError, match=r"studies.s.simulator.name: 'navier_stokes' is not allowed; allowed: \["):
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
    a = stage_sections(study, "generate")
    study2 = yaml.safe_load(yaml.safe_dump(study))
    study2["evaluation"]["n_plot_samples"] = 7
    assert stage_sections(study2, "generate") == a
    assert stage_sections(study2, "evaluate") != stage_sections(study, "evaluate")
