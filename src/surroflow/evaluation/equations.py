"""The equations an equation-identifying forecaster found, set beside the true ones.

A forecaster that identifies a vector field (``sindy``; one stepping POD coefficients inside a
``reduced`` wrapper too) states it as ``{variable: {term: coefficient}}``
(:meth:`surroflow.forecast.sindy.SINDy.equation_terms`).  When the simulator states its own right-
hand side in the same form (:meth:`surroflow.simulators.chaos.base.ChaoticSystem.equation_terms`)
and the model fitted the full, exactly observed state in its own units, every term is classed
as ``found`` (in both), ``missed`` (true, not identified) or ``spurious`` (identified, not true),
with its relative error.  Otherwise the table has the identified terms only, and says why.

Outputs of the stage ``write_equations``: ``equations_<model>.txt`` (the equations, then the
table), ``equations_<model>.csv`` and ``.html`` (the table, by :func:`.summary.write_summary`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..io import atomic_path
from .summary import write_summary

#: columns of the equation table
COLUMNS = ["variable", "term", "identified", "true", "abs_error", "rel_error", "status"]


def equation_rows(found: Mapping[str, Mapping[str, float]],
                  true: Mapping[str, Mapping[str, float]] | None) -> list[dict[str, Any]]:
    """One row per term of either side (``true`` None: identified terms only, no status)."""
    rows: list[dict[str, Any]] = []
    for var in found:
        f = found[var]
        t = dict(true.get(var, {})) if true is not None else {}
        for term in list(t) + [k for k in f if k not in t]:
            ident = f.get(term)
            tv = t.get(term)
            row: dict[str, Any] = {"variable": var, "term": term,
                                   "identified": math.nan if ident is None else float(ident),
                                   "true": math.nan if tv is None else float(tv)}
            if true is not None:
                err = abs((ident or 0.0) - (tv or 0.0))
                row["abs_error"] = err
                row["rel_error"] = err / abs(tv) if tv else math.nan
                row["status"] = "found" if ident is not None and tv is not None else (
                    "missed" if tv is not None else "spurious")
            rows.append(row)
    return rows


def equation_score(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts and the largest relative error over the true terms (empty without a truth)."""
    if not rows or "status" not in rows[0]:
        return {}
    status = [r["status"] for r in rows]
    rel = [r["rel_error"] for r in rows if r["status"] == "found"]
    return {"n_found": status.count("found"), "n_missed": status.count("missed"),
            "n_spurious": status.count("spurious"), "max_rel_error": max(rel) if rel else math.nan}


def format_equation(var: str, terms: Mapping[str, float], digits: int = 5) -> str:
    """``d<var>/dt = c1 term1 + c2 term2`` (``1`` dropped; ``0`` when no term survived)."""
    parts = []
    for term, c in terms.items():
        coef = f"{abs(c):.{digits}g}"
        body = coef if term == "1" else f"{coef} {term}"
        parts.append(("- " if c < 0 else "+ ") + body)
    rhs = " ".join(parts).lstrip("+ ") if parts else "0"
    if rhs.startswith("- "):
        rhs = "-" + rhs[2:]
    return f"d{var}/dt = {rhs}"


def write_equations(found: Mapping[str, Mapping[str, float]], true: Mapping[str, Mapping[str, float]] | None,
                    txt_path: str | Path, csv_path: str | Path, html_path: str | Path, header: Sequence[str],
                    no_truth_reason: str = "") -> dict[str, Any]:
    """Write the three files; return :func:`equation_score` of the table."""
    rows = equation_rows(found, true)
    score = equation_score(rows)
    lines = [*header, "", "identified equations:"]
    lines += ["  " + format_equation(v, t) for v, t in found.items()]
    if true is not None:
        lines += ["", "true equations (stated by the simulator):"]
        lines += ["  " + format_equation(v, t) for v, t in true.items()]
        lines += ["", (f"terms: {score['n_found']} found, {score['n_missed']} missed, {score['n_spurious']} "
                       f"spurious; largest relative error of a true coefficient: {score['max_rel_error']:.3g}")]
    else:
        lines += ["", f"no true equations to compare with: {no_truth_reason}"]
    lines += ["", ",".join(COLUMNS)]
    cols = COLUMNS if true is not None else COLUMNS[:4]
    for r in rows:
        lines.append(",".join("" if r.get(c) is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]))
                              for c in cols))
    txt = Path(txt_path)
    txt.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(txt) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_summary(rows, csv_path, cols, html_path, title=header[0] if header else "equations")
    return score


__all__ = ["COLUMNS", "equation_rows", "equation_score", "format_equation", "write_equations"]
