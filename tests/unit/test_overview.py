"""The report's front page (surroflow.evaluation.overview): best model against its baseline per
task, the overview table, and a description that survives Snakemake's Jinja2 + docutils
rendering with its tables and embedded figures intact."""
from __future__ import annotations

import math

import jinja2
import pytest
from docutils.core import publish_parts

from surroflow.evaluation.overview import load_study, overview_rows, write_front_page
from surroflow.io import write_table

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def _study(root, name, rows, figures=(), uq=None):
    d = root / name
    write_table(rows, d / "evaluation" / "summary.csv")
    for f in figures:
        (d / "evaluation" / "figures").mkdir(parents=True, exist_ok=True)
        # a figure's size: its base64 must not make a line docutils refuses (10,000 characters)
        (d / "evaluation" / "figures" / f"{f}.png").write_bytes(PNG + bytes(range(256)) * 100)
    if uq:
        write_table(uq, d / "uq" / "summary.csv")
    return d


@pytest.fixture
def pages(tmp_path):
    par = _study(tmp_path, "burgers", [
        {"surrogate": "gp", "kind": "gaussian_process", "rel_l2_mean": 0.002, "speedup": 1200.0,
         "offline_seconds": 10.0, "break_even_queries": 9.0, "coverage_95": 0.97},
        {"surrogate": "lin", "role": "baseline", "kind": "linear", "rel_l2_mean": 0.01, "speedup": 5000.0},
        {"surrogate": "cubic", "role": "candidate", "kind": "linear", "rel_l2_mean": 0.02},
        {"surrogate": "bad", "kind": "rbf", "rel_l2_mean": math.nan}],
        figures=("fields", "calibration", "singular_values"),
        uq=[{"qoi": "u_max", "source": "surrogate", "mean": 1.0, "mean_agrees": True}])
    fc = _study(tmp_path, "l63", [
        {"model": "persistence", "kind": "persistence", "vpt_median": 0.2},
        {"model": "climatology", "kind": "climatology", "vpt_median": 9.0},     # a baseline never wins
        {"model": "opinf", "kind": "opinf", "vpt_median": 7.5, "contains_true_equations": True},
        {"model": "dmd", "kind": "dmd", "vpt_median": 0.1}], figures=("vpt",))
    no_base = _study(tmp_path, "plate", [{"surrogate": "gp", "kind": "gaussian_process", "rel_l2_mean": 0.001}])
    return [load_study("burgers", "parametric", "Burgers\n  study.", par), load_study("l63", "forecast", "", fc),
            load_study("plate", "parametric", "", no_base)]


def test_best_model_against_its_baseline(pages):
    burgers, l63, plate = pages
    assert burgers.best["surrogate"] == "gp" and burgers.baseline["surrogate"] == "lin"
    assert l63.best["model"] == "opinf" and l63.baseline["model"] == "persistence"
    assert plate.baseline is None
    assert [f.stem for f in burgers.figures] == ["fields", "calibration"]      # headline figures only
    rows = {r["study"]: r for r in overview_rows(pages)}
    assert rows["burgers"]["skill vs baseline"] == pytest.approx(1 - 0.002 / 0.01)
    assert rows["burgers"]["speedup"] == 1200.0 and rows["burgers"]["coverage_95"] == 0.97
    assert rows["l63"]["skill vs baseline"] == pytest.approx(7.5 / 0.2)
    assert rows["plate"]["baseline"] == "none in this study" and math.isnan(rows["plate"]["skill vs baseline"])


def test_front_page_survives_jinja_and_docutils(pages, tmp_path):
    html_path, rst_path = tmp_path / "o" / "overview.html", tmp_path / "o" / "front_page.rst"
    write_front_page(pages, html_path, rst_path, intro_rst="Intro with ``code`` {not jinja}.")
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 3 and "Burgers study." in page
    for study in ("burgers", "l63", "plate"):
        assert f'id="sf-study-{study}"' in page
    assert "<th>rel_l2_mean</th>" in page and "<th>vpt_median</th>" in page and "uncertainty propagation" in page
    assert "The class of opinf holds the simulator's exact equations" in page
    assert ".sf-overview th{" in page
    # docutils refuses lines over 10,000 characters: the embedded figures are wrapped
    assert max(len(line) for line in page.splitlines()) < 10_000
    # what Snakemake does with the report description (snakemake/report/__init__.py)
    rendered = jinja2.Environment().from_string(rst_path.read_text()).render(snakemake=None)
    body = publish_parts(rendered, writer_name="html",
                         settings_overrides={"halt_level": 2, "report_level": 2})["html_body"]
    assert "Intro with" in body and ("<code" in body or "<tt" in body) and "{not jinja}" in body
    glance = {study: body.split(f'id="sf-glance-{study}"', 1)[1].split("</li>", 1)[0]
              for study in ("burgers", "l63", "plate")}
    assert "best <b>gp</b>, rel_l2_mean 0.002; baseline lin 0.01 (skill 0.8); speed-up 1200; coverage_95 0.97" \
        in glance["burgers"]
    assert "best <b>opinf</b>, vpt_median 7.5; baseline persistence 0.2 (VPT ratio 37.5)" in glance["l63"]
    assert "baseline" not in glance["plate"]
    assert "data:image" not in body            # the landing page stays short: figures are on the overview
