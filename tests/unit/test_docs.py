"""The README's tables stay true to the code: every built-in study is in the studies table, and
the summary.csv column list names every column the parametric evaluation writes."""
from __future__ import annotations

import re
from pathlib import Path

from surroflow.config import load_config
from surroflow.evaluation.parametric import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_builtin_study_is_in_the_studies_table():
    section = README.split("## Built-in studies", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| study |"))
    table = []
    for line in lines[start:]:            # one table: its rows up to the first line that is not one
        if not line.startswith("|"):
            break
        table.append(line)
    rows = {m.group(1) for line in table if (m := re.match(r"^\| `([A-Za-z0-9_-]+)` \|", line))}
    studies = set(load_config(ROOT / "config" / "config.yaml", import_modules=False)["studies"])
    assert rows == studies, f"README's built-in studies table lists {sorted(rows)}; config/config.yaml has {sorted(studies)}"


def test_summary_columns_are_listed():
    listed = README.split("`summary.csv` columns:", 1)[1].split("(plus", 1)[0]
    names = re.findall(r"[a-z][a-z0-9_]+", listed.replace("`", " "))
    missing = [c for c in SUMMARY_COLUMNS if c not in names]
    assert not missing, f"README's summary.csv column list lacks {missing}"
