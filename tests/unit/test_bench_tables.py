"""Benchmarks write their own tables: every block of bench/RESULTS*.md is filled (no placeholder,
no empty block), every benchmark script names the blocks it writes (``TABLES``) and each of
them exists, and the block writer replaces only its block."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
RESULTS = sorted(BENCH.glob("RESULTS*.md"))
SCRIPTS = sorted([*BENCH.glob("bench_*.py"), *BENCH.glob("showcase_*.py")])
PLACEHOLDERS = re.compile(r"RESULTS_TABLE|\bTODO\b|\bXXX\b|\bTBD\b")
MARKER = re.compile(r"<!-- (BEGIN|END) ([\w-]+) -->")


def blocks(path: Path) -> dict[str, str]:
    """name -> content of the marker blocks of ``path`` (fails on unbalanced markers)."""
    text, out, open_name, start = path.read_text(), {}, None, 0
    for m in MARKER.finditer(text):
        kind, name = m.groups()
        if kind == "BEGIN":
            assert open_name is None, f"{path.name}: block {name!r} begins inside block {open_name!r}"
            assert name not in out, f"{path.name}: block {name!r} appears twice"
            open_name, start = name, m.end()
        else:
            assert open_name == name, f"{path.name}: END {name!r} without its BEGIN"
            out[name], open_name = text[start:m.start()], None
    assert open_name is None, f"{path.name}: block {open_name!r} is never closed"
    return out


def tables_of(script: Path) -> tuple[str, ...]:
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "TABLES" for t in targets):
                return tuple(ast.literal_eval(node.value))
    return ()


def load_writer():
    spec = importlib.util.spec_from_file_location("results_table", BENCH / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_results_and_scripts():
    assert {p.name for p in RESULTS} >= {"RESULTS.md", "RESULTS_forecast.md"}
    assert {p.name for p in SCRIPTS} >= {"bench_pod.py", "bench_dag.py", "bench_generation_dysts.py",
                                         "showcase_local_bases.py"}


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_results_have_no_placeholder_and_no_empty_block(path):
    text = path.read_text()
    found = PLACEHOLDERS.findall(text)
    assert not found, f"{path.name} contains placeholders {found}"
    for name, content in blocks(path).items():
        rows = [line for line in content.splitlines() if line.startswith("|")]
        assert len(rows) >= 3, f"{path.name}: block {name!r} holds no table (header, rule and a row)"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_names_the_tables_it_writes(script):
    tables = tables_of(script)
    assert tables, f"{script.name} defines no TABLES (the results blocks it writes)"
    present = {name for path in RESULTS for name in blocks(path)}
    missing = [t for t in tables if t not in present]
    assert not missing, f"{script.name} writes {missing}, which no bench/RESULTS*.md holds"
    assert "write_block" in script.read_text(), f"{script.name} never writes its tables"


def test_every_block_belongs_to_a_benchmark():
    claimed = {t for script in SCRIPTS for t in tables_of(script)}
    for path in RESULTS:
        orphans = sorted(set(blocks(path)) - claimed)
        assert not orphans, f"{path.name}: blocks {orphans} are written by no benchmark script"


def test_write_block_replaces_only_its_block(tmp_path, capsys):
    writer = load_writer()
    path = tmp_path / "RESULTS.md"
    path.write_text("# title\n\ntext before\n\n<!-- BEGIN a -->\n\n| old |\n\n<!-- END a -->\n\ntext after\n")
    writer.write_block(path, "a", "| x |\n|---|\n| 1 |")
    text = path.read_text()
    assert "| old |" not in text and "| 1 |" in text
    assert text.startswith("# title\n\ntext before\n") and text.endswith("text after\n")
    writer.write_block(path, "b", "| y |\n|---|\n| 2 |")          # a new block goes at the end
    assert set(blocks(path)) == {"a", "b"} and writer.read_block(path, "b") == "| y |\n|---|\n| 2 |"
    with pytest.raises(ValueError, match="empty"):
        writer.write_block(path, "a", "  \n")
