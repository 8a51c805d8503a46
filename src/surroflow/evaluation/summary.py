"""Summary tables of both evaluations: ``summary.csv`` through the one writer
(:func:`surroflow.io.write_table`), and the same rows as a small HTML page ``summary.html``
(Snakemake's report shows an HTML file on the page, a CSV only as a download)."""
from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..io import atomic_path, table_columns, write_table


def format_cell(v: Any) -> str:
    """A table cell as text: floats to 4 significant digits, NaN as NaN, booleans as yes/no,
    the rest HTML-escaped."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f"{f:.4g}"
    return html.escape(str(v))


_STYLE = ("body{font-family:sans-serif;font-size:13px;margin:8px}"
          "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
          "th{background:#f0f0f0;position:sticky;top:0}td:first-child,th:first-child{text-align:left}"
          "caption{text-align:left;font-weight:bold;margin-bottom:4px}")


def table_fragment(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str = "",
                   all_columns: bool = True) -> str:
    """``rows`` as an HTML ``<table>`` element (NaN written as NaN, not blank): ``columns``
    first, then (``all_columns``) every other key of the rows."""
    cols = table_columns(rows, columns) if all_columns else [c for c in columns if any(c in r for r in rows)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "\n".join("<tr>" + "".join(f"<td>{format_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{cap}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str = "") -> str:
    """A self-contained HTML page with ``rows`` as a table (:func:`table_fragment`)."""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n{table_fragment(rows, columns, title)}\n</body></html>\n")


def write_summary(rows: Sequence[Mapping[str, Any]], csv_path: str | os.PathLike[str], columns: Sequence[str],
                  html_path: str | os.PathLike[str] | None = None, title: str = "") -> Path:
    """Write ``summary.csv`` (and, with ``html_path``, the HTML page of the same rows)."""
    out = write_table(rows, csv_path, columns)
    if html_path is not None:
        p = Path(html_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(p) as tmp:
            Path(tmp).write_text(html_table(rows, columns, title))
    return out


__all__ = ["format_cell", "table_fragment", "html_table", "write_summary"]
