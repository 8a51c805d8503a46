"""A model-error study is checked before any job: the imperfect model is the simulator with other,
valid settings; the truth is exact and whole; the section belongs to task model_error only."""
from __future__ import annotations

import copy

import pytest

from surroflow import SurroflowError
from surroflow.config import stage_sections, validate_config


def study(**changes) -> dict:
    base = {"task": "model_error",
            "simulator": {"name": "kuramoto_sivashinsky", "settings": {"n_steps": 100}},
            "design": {"n_train": 2, "n_test": 2},
            # KS reference trajectories (dt 0.25) hold to 0.1 x the VPT threshold for ~4.7 LT
            "forecast": {"horizon_lyapunov": 4},
            "model_error": {"model": {"c_xx": 0.5}}}
    for key, value in changes.items():
        base[key] = value
    return {"studies": {"me": base}}


def test_a_well_posed_study_validates_with_the_schema_defaults():
    cfg = validate_config(study())
    me = cfg["studies"]["me"]["model_error"]
    assert me["observation"] == {"every": 4, "noise": 0.1, "seed": 0}
    assert me["assimilation"]["method"] == "letkf" and me["regression"]["n_bootstrap"] == 100


@pytest.mark.parametrize("changes, match", [
    ({"model_error": None}, r"studies\.me\.model_error: a model_error study needs this section"),
    ({"model_error": {"model": {"c_xx": 1.0}}}, r"model_error\.model: .* leaves the truth unchanged"),
    ({"model_error": {"model": {"c_x": 0.5}}}, r"model_error\.model: .*c_x"),
    ({"model_error": {"model": {"c_xx": 0.5}, "observation": {"every": 65}}},
     r"model_error\.observation\.every: expected 1\.\.64"),
    ({"simulator": {"name": "kuramoto_sivashinsky", "settings": {"observation_noise": 0.1}}},
     r"\['observation_noise'\] are not allowed in a model_error study"),
    ({"simulator": {"name": "lorenz63"}}, r"studies\.me\.task: simulator 'lorenz63' supports \['forecast'\]"),
])
def test_ill_posed_studies_are_one_sentence_naming_the_key(changes, match):
    cfg = study(**changes)
    if changes.get("model_error", 0) is None:
        del cfg["studies"]["me"]["model_error"]
    with pytest.raises(SurroflowError, match=match):
        validate_config(cfg)


def test_the_section_belongs_to_task_model_error_only():
    cfg = study(task="forecast")
    with pytest.raises(SurroflowError, match=r"studies\.me\.model_error: only a study with task model_error"):
        validate_config(cfg)


def test_stage_sections_of_the_model_error_stages():
    """Every model-error setting reruns the discovery (the passes interleave filter and
    regression); the forecast models a model-error study does not have are not its input."""
    cfg = validate_config(study())["studies"]["me"]
    other = copy.deepcopy(cfg)
    other["model_error"]["regression"]["threshold"] = 0.2
    assert stage_sections(cfg, "discover_model_error") != stage_sections(other, "discover_model_error")
    assert stage_sections(cfg, "discover_model_error")["model_error"]["passes"] == 2
    assert "models" not in stage_sections(cfg, "evaluate_model_error")["forecast"]
