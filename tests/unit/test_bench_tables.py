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


# ----------------------------------------------------------------- bench_pipeline's table logic
def load_pipeline_bench():
    import sys
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH / "bench_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pipeline"] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


FAKE_LOG = """\
Assuming unrestricted shared filesystem usage.

SNAKEMAKE
=========
  Date: 2026-12-02 02:00:00
  Snakemake version: 9.27.1
  Config file(s): [PosixPath('/x/tests/config/tiny.yaml')]

Building DAG of jobs...
Provided cores: 2
Select jobs to execute...
Execute 1 jobs...
[Wed Dec  2 02:00:02 2026]
localrule make_design:
    output: results/s/design/train.nc
    log: logs/make_design/s.log
    jobid: 3
    benchmark: results/s/benchmarks/make_design.tsv
    wildcards: study=s
    resources: tmpdir=/tmp
Shell command: None
[Wed Dec  2 02:00:06 2026]
Finished jobid: 3 (Rule: make_design)
Execute 2 jobs...
[Wed Dec  2 02:00:06 2026]
localrule generate_batch:
    log: logs/generate_batch/s_train_0000.log
    jobid: 4
    benchmark: results/s/benchmarks/generate_batch_train_0000.tsv
    threads: 2
    resources: tmpdir=/tmp, mem_mb=2000
Shell command: None
[Wed Dec  2 02:00:16 2026]
Finished jobid: 4 (Rule: generate_batch)
[Wed Dec  2 02:00:16 2026]
rule generate_batch:
    log: logs/generate_batch/s_train_0001.log
    jobid: 5
    benchmark: results/s/benchmarks/generate_batch_train_0001.tsv
    threads: 2
Shell command: None
[Wed Dec  2 02:00:26 2026]
Finished jobid: 5 (Rule: generate_batch)
[Wed Dec  2 02:00:26 2026]
localrule evaluate_surrogates:
    log: logs/evaluate_surrogates/s.log
    jobid: 1
    benchmark: results/s/benchmarks/evaluate_surrogates.tsv
Shell command: None
[Wed Dec  2 02:00:30 2026]
Error in rule evaluate_surrogates:
    message: None
    jobid: 1
"""


def fake_run(root: Path, compute: bool = True) -> Path:
    """A run folder: Snakemake's log, three benchmark files (4 s, 9 s, 8 s), job logs with the
    stage's compute line (1 s, 6 s, 4 s) and a summary.csv; the failed job wrote neither."""
    (root / ".snakemake" / "log").mkdir(parents=True)
    (root / ".snakemake" / "log" / "2026-12-02T020000.000000.snakemake.log").write_text(FAKE_LOG)
    bench = root / "results" / "s" / "benchmarks"
    bench.mkdir(parents=True)
    for name, wall, c in [("make_design", 4.0, 1.0), ("generate_batch_train_0000", 9.0, 6.0),
                          ("generate_batch_train_0001", 8.0, 4.0)]:
        (bench / f"{name}.tsv").write_text(f"s\th:m:s\tmax_rss\n{wall}\t0:00:0{int(wall)}\t100\n")
        rule = "make_design" if name == "make_design" else "generate_batch"
        log = root / "logs" / rule / ("s.log" if name == "make_design" else f"s_{name.split('_', 2)[2]}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        stage = f"2026-12-02 02:00:01,000 INFO surroflow: {rule}: stage computed in {c:.3f} s\n"
        log.write_text("2026-12-02 02:00:01,000 INFO surroflow.x: starting\n" + (stage if compute else ""))
    (root / "results" / "s" / "evaluation").mkdir(parents=True)
    (root / "results" / "s" / "evaluation" / "summary.csv").write_text(
        "surrogate,kind,rel_l2_mean,rel_l2_max,speedup\nrbf,rbf,0.00077,0.001,485.3\n")
    return root


def test_pipeline_bench_sums_and_fractions(tmp_path):
    bp = load_pipeline_bench()
    run = bp.read_run(fake_run(tmp_path))
    assert run.config == "/x/tests/config/tiny.yaml" and run.log_seconds == 30
    by_id = {j.jobid: j for j in run.jobs}
    assert (by_id[4].threads, by_id[4].start, by_id[4].end) == (2, 6, 16)
    assert by_id[3].threads == 1 and by_id[1].failed and by_id[1].end == 30
    s = bp.summarise(run, cores=2, wall=32.0)
    rules = {r["rule"]: r for r in s["rules"]}
    assert rules["generate_batch"]["jobs"] == 2 and rules["generate_batch"]["wall"] == pytest.approx(17.0)
    assert rules["generate_batch"]["compute"] == pytest.approx(10.0)
    assert rules["generate_batch"]["overhead"] == pytest.approx(1 - 10 / 17)
    assert rules["make_design"]["overhead"] == pytest.approx(0.75)
    assert rules["evaluate_surrogates"]["failed"] == 1 and rules["evaluate_surrogates"]["overhead"] is None
    assert s["job_wall"] == pytest.approx(21.0) and s["compute"] == pytest.approx(11.0)
    assert s["overhead"] == pytest.approx(1 - 11 / 21)
    assert s["available"] == pytest.approx(64.0)
    assert s["claimed"] == pytest.approx(4 * 1 + 17 * 2)            # job wall x threads
    # timeline: 1 core for 4 s (make_design), 2 cores for 20 s, 1 core for 4 s (evaluate)
    assert s["idle"] == pytest.approx(64 - (4 + 40 + 4))
    assert s["free_seconds"] == pytest.approx(32 - 20)
    acc = bp.accuracy(tmp_path)
    assert acc == [{"study": "s", "model": "rbf", "error": "rel_l2_mean 0.00077", "speedup": "485.3"}]


def test_pipeline_bench_without_compute_lines_says_na(tmp_path):
    bp = load_pipeline_bench()
    s = bp.summarise(bp.read_run(fake_run(tmp_path, compute=False)), cores=2, wall=32.0)
    assert s["compute"] is None and s["overhead"] is None and s["job_wall"] == pytest.approx(21.0)
    text = bp.section("old", s, [], {})
    assert "| generate_batch | 2 | 2 | 17.0 | n/a | n/a |" in text


def test_pipeline_bench_replaces_only_its_own_run(tmp_path):
    bp = load_pipeline_bench()
    s = bp.summarise(bp.read_run(fake_run(tmp_path / "run")), cores=2, wall=32.0)
    mach = {"nproc": 2, "cpu": "CPU", "load": "1.00/1.00/1.00"}
    results = tmp_path / "RESULTS_pipeline.md"
    for key in ("before abc, config.yaml", "after def, config.yaml"):
        bp.write_results(results, key, bp.summary_row(key, "ok", s, mach), bp.section(key, s, [], {}))
    s2 = dict(s, wall=16.0)
    bp.write_results(results, "before abc, config.yaml", bp.summary_row("before abc, config.yaml", "ok", s2, mach),
                     bp.section("before abc, config.yaml", s2, [], {"note": "rerun"}))
    assert set(blocks(results)) == {"bench_pipeline"}
    text = results.read_text()
    summary = text.split("<!-- run: ", 1)[0]
    assert [line.split(" | ")[0] for line in summary.splitlines() if line.startswith("| ")] == [
        "| run", "| before abc, config.yaml", "| after def, config.yaml"]
    assert text.startswith("# Pipeline benchmark")
    rows = [line for line in text.splitlines() if line.startswith("| before") or line.startswith("| after")]
    assert [r.split(" | ")[0] for r in rows] == ["| before abc, config.yaml", "| after def, config.yaml"]
    assert "| 16.0 |" in rows[0] and "| 32.0 |" in rows[1]           # the rerun replaced its own row only
    assert text.count("#### before abc") == 1 and text.count("#### after def") == 1 and "note: rerun" in text
    assert text.index("#### before abc") < text.index("#### after def")
    bp.write_results(results, "after def, config.yaml", None, None)       # --drop
    text = results.read_text()
    assert "after def" not in text and text.count("#### before abc") == 1
