"""The equation tables of equation-identifying forecasters (evaluation.equations, stage
write_equations): statuses, relative errors, the written equations, and when the truth applies."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from surroflow.evaluation.equations import equation_rows, equation_score, format_equation, write_equations
from surroflow.forecast import make_forecaster
from surroflow.stages.plan import EQUATION_FORECASTERS
from surroflow.stages.write_equations import _truth
from surroflow.surrogates.registry import estimator_class, kinds

TRUE = {"x": {"x": -10.0, "y": 10.0}, "y": {"x": 28.0, "y": -1.0, "x z": -1.0}}


def test_rows_class_every_term_found_missed_or_spurious():
    found = {"x": {"x": -9.9, "y": 10.0, "x^2": 0.2}, "y": {"x": 28.0, "x z": -1.0}}
    rows = {(r["variable"], r["term"]): r for r in equation_rows(found, TRUE)}
    assert rows[("x", "x")]["status"] == "found" and math.isclose(rows[("x", "x")]["rel_error"], 0.01)
    assert rows[("x", "x^2")]["status"] == "spurious" and math.isnan(rows[("x", "x^2")]["true"])
    assert rows[("y", "y")]["status"] == "missed" and math.isnan(rows[("y", "y")]["identified"])
    score = equation_score(list(rows.values()))
    assert score == {"n_found": 4, "n_missed": 1, "n_spurious": 1, "max_rel_error": score["max_rel_error"]}
    assert math.isclose(score["max_rel_error"], 0.01)
    assert equation_score(equation_rows(found, None)) == {}


def test_equations_are_written_as_read():
    assert format_equation("y", {"x": 28.0, "y": -1.0, "x z": -0.99943}) == "dy/dt = 28 x - 1 y - 0.99943 x z"
    assert format_equation("z", {"1": -2.5}) == "dz/dt = -2.5"
    assert format_equation("z", {}) == "dz/dt = 0"


def test_files_hold_the_table_and_say_why_there_is_no_truth(tmp_path):
    found = {"x": {"x": -10.0, "y": 10.0}, "y": {"x": 28.0, "y": -1.0, "x z": -1.0}}
    write_equations(found, TRUE, tmp_path / "e.txt", tmp_path / "e.csv", tmp_path / "e.html", ["title"])
    assert set(pd.read_csv(tmp_path / "e.csv")["status"]) == {"found"}
    write_equations(found, None, tmp_path / "n.txt", tmp_path / "n.csv", tmp_path / "n.html", ["title"],
                    "the model steps POD coefficients")
    assert "no true equations to compare with: the model steps POD coefficients" in (tmp_path / "n.txt").read_text()


def test_the_truth_applies_only_to_a_full_unscaled_exactly_sized_state():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 50, 3)).cumsum(axis=1) * 0.1
    sim = {"name": "lorenz63", "settings": {"dt": 0.01}}
    plain = make_forecaster("sindy").fit(X, dt=0.01)
    assert _truth(sim, plain, 3)[0] is not None
    assert "partial observation" in _truth(sim, plain, 2)[1]
    assert "standardised" in _truth(sim, make_forecaster("sindy", scaling="component").fit(X, dt=0.01), 3)[1]
    assert "does not state" in _truth({"name": "lorenz96", "settings": {"N": 8}}, plain, 8)[1]


def test_the_plan_knows_which_kinds_identify_equations():
    assert set(EQUATION_FORECASTERS) == {k for k in kinds("forecaster")
                                         if estimator_class(k, "forecaster").identifies_equations}
