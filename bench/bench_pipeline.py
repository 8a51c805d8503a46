"""Where a workflow run spends its time: job wall time against the compute inside the jobs, per
rule kind, and the cores the run leaves idle.

    python bench/bench_pipeline.py --label after                         # default config, all cores
    python bench/bench_pipeline.py --config tests/config/tiny.yaml --label "dev tiny"
    git worktree add /tmp/old <commit> && python bench/bench_pipeline.py --checkout /tmp/old --label before
    python bench/bench_pipeline.py --from-run DIR --wall 665 --cores 2 --label old   # tabulate a kept run

One run = ``snakemake --workflow-profile workflow/profiles/default --cores N --configfile CONFIG``
of the checkout's Snakefile in a fresh temporary work folder (``--keep`` keeps it), with the
checkout's ``src`` first on ``PYTHONPATH`` so that an old checkout runs its own package; the
report (``--report``) is not part of it.  ``--config`` is read relative to the checkout (its own
``config/config.yaml`` by default), so each commit runs its own study definitions.

What is measured, from the run folder alone (so an old commit needs nothing new):

* **wall**: the whole ``snakemake`` process (DAG, scheduling, every job), timed here.
* **job wall**: the ``s`` column of each job's benchmark file (``results/<study>/benchmarks/*.tsv``).
* **compute**: the line ``<stage>: stage computed in <seconds> s`` that ``run_rule`` writes into
  each job's log (``logs/<rule>/...``): the stage's work, after imports and set-up.  Commits
  before that line existed give ``n/a``.
* **overhead** = 1 - compute / job wall, per rule kind and over all jobs.
* **cores**: core-seconds available (wall x cores), claimed by jobs (job wall x the job's
  threads, from Snakemake's run log ``.snakemake/log/*.snakemake.log``) and idle: wall x cores
  minus the integral over the run's timeline (job start and finish in Snakemake's log, 1 s
  resolution) of the threads claimed; "time with idle cores" is the part of the wall time when
  fewer than all cores were claimed.
* **accuracy**: the main error column of every model in each study's ``evaluation/summary.csv``
  (``rel_l2_mean*`` for parametric studies, ``vpt_median`` for forecast studies) and the
  speed-up where there is one, so a faster run can be shown to be as accurate.

The results go into the ``bench_pipeline`` block of ``bench/RESULTS_pipeline.md`` (``--results``
for another file, ``--results -`` to only print): one row per run in the summary table and one
section per run, keyed by ``<label> <commit>, <config>``; a run replaces only its own row and
section, so before/after runs and the tiny/default configs sit side by side.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: the blocks of bench/RESULTS*.md this script writes (see bench/results_table.py)
TABLES = ("bench_pipeline",)
RESULTS = ROOT / "bench" / "RESULTS_pipeline.md"
HEADER = """# Pipeline benchmark

Written by `bench/bench_pipeline.py` (see its docstring for what each column means); one row and
one section per run (`<label> <commit>, <config>`); each run replaces only its own.  Timings
measured on a loaded machine say so in their label.
"""

COMPUTE_LINE = re.compile(r"(\w+): stage computed in ([0-9.eE+-]+) s")
STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]\s*$")
JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\s*$")
JOB_FIELD = re.compile(r"^\s+(jobid|threads|benchmark|log): (.*)$")
JOB_END = re.compile(r"^(?:Finished jobid: (\d+)|Finished job (\d+)\.|Error in rule (\w+):)")
DATE = re.compile(r"^\s+Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
ERROR_FIELD = re.compile(r"^\s+jobid: (\d+)")
CONFIG = re.compile(r"^\s+Config file\(s\): \[(?:\w*Path\()?'([^']+)'", re.M)


# =========================================================================== the run folder
@dataclass
class Job:
    """One job of the run: its rule, threads, and (from Snakemake's log) when it ran."""
    rule: str
    jobid: int
    threads: int = 1
    benchmark: str | None = None
    log: str | None = None
    start: float | None = None      # seconds after the log's start
    end: float | None = None
    failed: bool = False
    wall: float | None = None       # benchmark `s`
    compute: float | None = None    # the stage's own line in its log


@dataclass
class Run:
    jobs: list[Job] = field(default_factory=list)
    log_seconds: float | None = None    # the last event of Snakemake's log after its start
    config: str | None = None           # the run's (first) config file, from the log


def _stamp(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def parse_snakemake_log(text: str) -> Run:
    """Jobs of a Snakemake 9 run log: each job starts with a ``[<date>]`` line followed by
    ``(local)rule <name>:`` and indented ``jobid:``/``threads:``/``benchmark:``/``log:`` lines
    (no ``threads:`` line means 1); it ends at a ``[<date>]`` line followed by ``Finished jobid: N``
    (or ``Error in rule <name>:`` with its ``jobid:`` below)."""
    lines = text.splitlines()
    t0: datetime | None = None
    for line in lines:
        m = DATE.match(line)
        if m:
            t0 = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
            break
    jobs: dict[int, Job] = {}
    stamp: datetime | None = None
    last: datetime | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = STAMP.match(line)
        if m:
            stamp = _stamp(m.group(1))
            t0 = t0 or stamp
            last = stamp
            i += 1
            continue
        rel = None if stamp is None or t0 is None else (stamp - t0).total_seconds()
        m = JOB_START.match(line)
        if m:
            fields: dict[str, str] = {}
            i += 1
            while i < len(lines) and lines[i][:1].isspace():      # the job's indented fields
                f = JOB_FIELD.match(lines[i])
                if f:
                    fields[f.group(1)] = f.group(2).strip()
                i += 1
            if "jobid" in fields:
                jid = int(fields["jobid"])
                jobs[jid] = Job(rule=m.group(1), jobid=jid, threads=int(fields.get("threads", 1)),
                                benchmark=fields.get("benchmark"), log=fields.get("log"), start=rel)
            continue
        m = JOB_END.match(line)
        if m:
            if m.group(3):                      # Error in rule X: its jobid follows
                for nxt in lines[i + 1:i + 6]:
                    e = ERROR_FIELD.match(nxt)
                    if e:
                        job = jobs.get(int(e.group(1)))
                        if job is not None:
                            job.end, job.failed = rel, True
                        break
            else:
                job = jobs.get(int(m.group(1) or m.group(2)))
                if job is not None:
                    job.end = rel
        i += 1
    seconds = None if last is None or t0 is None else (last - t0).total_seconds()
    cfg = CONFIG.search(text)
    return Run(jobs=sorted(jobs.values(), key=lambda j: j.jobid), log_seconds=seconds,
               config=cfg.group(1) if cfg else None)


def benchmark_seconds(path: Path) -> float | None:
    """The ``s`` column (job wall time) of a Snakemake benchmark file (first repeat)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return None
    try:
        return float(rows[0]["s"]) if rows else None
    except (KeyError, ValueError):
        return None


def compute_seconds(path: Path) -> float | None:
    """The stage's ``stage computed in <s> s`` line of a job log (the last one, if the job ran twice)."""
    try:
        found = COMPUTE_LINE.findall(path.read_text(errors="replace"))
    except OSError:
        return None
    return float(found[-1][1]) if found else None


def _rule_of(stem: str, rules: Iterable[str]) -> str:
    """The rule a benchmark or log file belongs to when Snakemake's log does not say: the longest
    known rule name that ``stem`` is or starts with (``generate_batch_train_0001`` ->
    ``generate_batch``); else the stem up to its last ``_``."""
    best = max((r for r in rules if stem == r or stem.startswith(r + "_")), key=len, default=None)
    return best or (stem.rsplit("_", 1)[0] if "_" in stem else stem)


def read_run(workdir: Path) -> Run:
    """Every job of the run in ``workdir``: rule, threads and timeline from the (latest)
    Snakemake log, job wall from its benchmark file, compute from its log.  Benchmark files that
    the Snakemake log does not name (no log kept) become jobs of the rule their name starts with."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    run = parse_snakemake_log(logs[-1].read_text(errors="replace")) if logs else Run()
    named = set()
    for job in run.jobs:
        if job.benchmark:
            job.wall = benchmark_seconds(workdir / job.benchmark)
            named.add((workdir / job.benchmark).resolve())
        if job.log:
            job.compute = compute_seconds(workdir / job.log)
    rules = {j.rule for j in run.jobs} | {p.name for p in (workdir / "logs").glob("*") if p.is_dir()}
    extra = [p for p in sorted(workdir.glob("*/*/benchmarks/*.tsv")) if p.resolve() not in named]
    for k, path in enumerate(extra):
        rule = _rule_of(path.stem, rules)
        study = path.parent.parent.name
        rest = path.stem[len(rule) + 1:]
        log = workdir / "logs" / rule / (f"{study}_{rest}.log" if rest else f"{study}.log")
        run.jobs.append(Job(rule=rule, jobid=-1 - k, benchmark=str(path.relative_to(workdir)),
                            wall=benchmark_seconds(path), compute=compute_seconds(log)))
    return run


# =========================================================================== the tables
def _busy_integral(jobs: list[Job], cores: int, wall: float) -> tuple[float, float]:
    """(core-seconds claimed over the timeline, seconds with all cores claimed): threads of the
    jobs running at each moment, capped at ``cores``, integrated over [0, wall]."""
    events: list[tuple[float, int]] = []
    for j in jobs:
        if j.start is None:
            continue
        end = j.end if j.end is not None else wall
        s, e = max(0.0, j.start), min(wall, max(end, j.start))
        if e > s:
            events += [(s, min(j.threads, cores)), (e, -min(j.threads, cores))]
    events.sort()
    busy = full = 0.0
    level, t_prev = 0, 0.0
    for t, d in events:
        busy += min(level, cores) * (t - t_prev)
        full += (t - t_prev) if level >= cores else 0.0
        level, t_prev = level + d, t
    return busy, full


def summarise(run: Run, cores: int, wall: float) -> dict[str, Any]:
    """Per rule kind and whole-run figures of ``run`` (``wall`` seconds on ``cores`` cores)."""
    rules: dict[str, dict[str, Any]] = {}
    for j in run.jobs:
        if j.benchmark is None and j.wall is None:
            continue                                    # `all` and other jobs without work
        r = rules.setdefault(j.rule, {"rule": j.rule, "jobs": 0, "threads": set(), "wall": 0.0, "timed": 0,
                                      "compute": 0.0, "n_compute": 0, "claimed": 0.0, "failed": 0})
        r["jobs"] += 1
        r["threads"].add(min(j.threads, cores))
        r["failed"] += int(j.failed)
        if j.wall is None:
            continue                                    # failed before its benchmark was written
        r["timed"] += 1
        r["wall"] += j.wall
        r["claimed"] += j.wall * min(j.threads, cores)
        if j.compute is not None:
            r["compute"] += j.compute
            r["n_compute"] += 1
    for r in rules.values():
        r["overhead"] = (1 - r["compute"] / r["wall"]) if r["n_compute"] == r["timed"] > 0 and r["wall"] > 0 else None
    total_wall = sum(r["wall"] for r in rules.values())
    all_compute = any(r["timed"] for r in rules.values()) and all(r["n_compute"] == r["timed"] for r in rules.values())
    total_compute = sum(r["compute"] for r in rules.values()) if all_compute else None
    busy, full = _busy_integral(run.jobs, cores, wall)
    return {
        "rules": list(rules.values()), "jobs": sum(r["jobs"] for r in rules.values()),
        "failed": sum(r["failed"] for r in rules.values()),
        "job_wall": total_wall, "compute": total_compute,
        "overhead": (1 - total_compute / total_wall) if total_compute is not None and total_wall > 0 else None,
        "wall": wall, "cores": cores, "available": wall * cores,
        "claimed": sum(r["claimed"] for r in rules.values()),
        "idle": max(0.0, wall * cores - busy) if any(j.start is not None for j in run.jobs) else None,
        "free_seconds": max(0.0, wall - full) if any(j.start is not None for j in run.jobs) else None,
    }


def generation_solver(workdir: Path, run: Run, results: str = "results") -> list[dict[str, Any]]:
    """Per study: the ``generate_batch`` jobs' wall time against the solver time inside them (the
    sum of ``wall_time(sample)`` in its batch files: per-sample walls, or a vectorised batch's
    time split evenly over its samples)."""
    import h5py

    out = []
    for study_dir in sorted((workdir / results).glob("*/generate")):
        study = study_dir.parent.name
        solver = 0.0
        for f in sorted(study_dir.glob("*/batch_*.nc")):
            with h5py.File(f, "r") as h:
                if "wall_time" in h:
                    solver += float(np.nansum(h["wall_time"][()]))
        walls = [j.wall for j in run.jobs if j.rule == "generate_batch" and j.wall is not None
                 and j.benchmark and f"/{study}/" in f"/{j.benchmark}"]
        if walls and solver > 0:
            out.append({"study": study, "jobs": len(walls), "job_wall": sum(walls), "solver": solver,
                        "ratio": sum(walls) / solver})
    return out


def accuracy(workdir: Path, results: str = "results") -> list[dict[str, str]]:
    """The main error of every model of every study: ``rel_l2_mean`` (and ``rel_l2_mean_<var>``)
    of parametric studies, ``vpt_median`` of forecast studies, with the speed-up where given."""
    rows = []
    for path in sorted((workdir / results).glob("*/evaluation/summary.csv")):
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            metrics = [c for c in cols if c == "vpt_median" or re.fullmatch(r"rel_l2_mean(_\w+)?", c)]
            for rec in reader:
                name = rec.get(cols[0], "") if cols else ""
                rows.append({"study": path.parent.parent.name, "model": name,
                             "error": ", ".join(f"{c} {_num(rec.get(c))}" for c in metrics),
                             "speedup": _num(rec.get("speedup"))})
    return rows


def _num(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return "n/a"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{f:.{digits}g}"


def _s(v: float | None, fmt: str = "{:.1f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


SUMMARY_HEAD = ("| run | status | cores | jobs | wall (s) | job wall (s) | compute (s) | overhead | "
                "core-s available | core-s claimed | idle core-s | time with idle cores (s) | machine |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def summary_row(key: str, status: str, s: dict[str, Any], mach: dict[str, Any]) -> str:
    machine = f"{mach['nproc']}x {mach['cpu']}, load {mach['load']}"
    cells = [key, status, str(s["cores"]), str(s["jobs"]), _s(s["wall"]), _s(s["job_wall"]), _s(s["compute"]),
             _pct(s["overhead"]), _s(s["available"], "{:.0f}"), _s(s["claimed"], "{:.0f}"),
             _s(s["idle"], "{:.0f}"), _s(s["free_seconds"], "{:.0f}"), machine]
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def section(key: str, s: dict[str, Any], acc: list[dict[str, str]], info: dict[str, str],
            gen: list[dict[str, Any]] | None = None) -> str:
    out = [f"#### {key}", ""]
    out += [f"{k}: {v}  " for k, v in info.items()]
    out += ["", "| rule | jobs | threads | job wall (s) | compute (s) | overhead | mean job wall (s) | core-s claimed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(s["rules"], key=lambda r: -r["wall"]):
        compute = ("n/a" if r["n_compute"] == 0 else
                   f"{r['compute']:.1f}" + ("" if r["n_compute"] == r["jobs"] else f" ({r['n_compute']} of {r['timed']} jobs)"))
        threads = "/".join(str(t) for t in sorted(r["threads"]))
        jobs = str(r["jobs"]) + (f" ({r['failed']} failed)" if r["failed"] else "")
        out.append(f"| {r['rule']} | {jobs} | {threads} | {r['wall']:.1f} | {compute} | {_pct(r['overhead'])} | "
                   f"{_s(r['wall'] / r['timed'] if r['timed'] else None, '{:.2f}')} | {r['claimed']:.0f} |")
    out.append(f"| **all jobs** | {s['jobs']} | | {s['job_wall']:.1f} | {_s(s['compute'])} | {_pct(s['overhead'])} "
               f"| | {s['claimed']:.0f} |")
    if gen:
        out += ["", "| study | generate_batch jobs | job wall (s) | solver time inside (s) | job wall / solver |",
                "|---|---:|---:|---:|---:|"]
        out += [f"| {g['study']} | {g['jobs']} | {g['job_wall']:.1f} | {g['solver']:.3g} | {g['ratio']:.3g} |"
                for g in gen]
    if acc:
        out += ["", "| study | model | error | speed-up |", "|---|---|---|---:|"]
        out += [f"| {a['study']} | {a['model']} | {a['error']} | {a['speedup']} |" for a in acc]
    return "\n".join(out)


SECTION = re.compile(r"<!-- run: (.*?) -->\n(.*?)<!-- /run -->\n?", re.S)


def merge_block(old: str | None, key: str, row: str | None, text: str | None) -> str:
    """The ``bench_pipeline`` block with run ``key``'s summary row and section replaced (or
    appended; removed when ``row`` is None), every other run's kept as it was, in its place."""
    key = key.replace("|", "/")
    rows: dict[str, str] = {}
    sections: dict[str, str] = {}
    if old:
        for line in old.split("<!-- run: ", 1)[0].splitlines():     # the summary table only
            if line.startswith("| ") and not line.startswith("| run |"):
                rows[line[2:].split(" | ", 1)[0].strip()] = line
        for m in SECTION.finditer(old):
            sections[m.group(1)] = m.group(2).strip("\n")
    if row is None:
        rows.pop(key, None)
        sections.pop(key, None)
    else:
        rows[key] = row
        sections[key] = (text or "").strip("\n")
    body = [SUMMARY_HEAD, *rows.values(), ""]
    for k, t in sections.items():
        body += [f"<!-- run: {k} -->", "", t, "", "<!-- /run -->", ""]
    return "\n".join(body)


def write_results(results: Path, key: str, row: str | None, text: str | None) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from results_table import read_block, write_block
    if not results.exists():
        results.write_text(HEADER)
    write_block(results, "bench_pipeline", merge_block(read_block(results, "bench_pipeline"), key, row, text))


# =========================================================================== running
def commit_of(checkout: Path) -> str:
    """Short commit of ``checkout`` (``+dirty`` with uncommitted changes to tracked files)."""
    def git(*a: str) -> str:
        # read-only: GIT_OPTIONAL_LOCKS=0 keeps `git status` from refreshing (locking) the index
        return subprocess.run(["git", "-C", str(checkout), *a], capture_output=True, text=True, check=True,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}).stdout.strip()
    try:
        rev = git("rev-parse", "--short", "HEAD")
        return rev + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_pod import machine
    m = machine()
    m["load"] = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return m


def run_workflow(checkout: Path, config: Path, workdir: Path, cores: int) -> tuple[float, int]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(checkout / "src"), *filter(None, [env.get("PYTHONPATH")])])
    where = subprocess.run([sys.executable, "-c", "import surroflow; print(surroflow.__file__)"],
                           env=env, capture_output=True, text=True, cwd=workdir).stdout.strip()
    if not Path(where).resolve().is_relative_to((checkout / "src").resolve()):
        raise SystemExit(f"surroflow imports from {where!r}, not from {checkout / 'src'}")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(checkout / "Snakefile"), "-d", str(workdir),
           "--configfile", str(config), "--workflow-profile", str(checkout / "workflow" / "profiles" / "default"),
           "--cores", str(cores), "--nocolor"]
    print("running:", " ".join(cmd), flush=True)
    with open(workdir / "snakemake.out", "w") as out:
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - t0
    if rc != 0:
        print((workdir / "snakemake.out").read_text()[-3000:], file=sys.stderr)
    return wall, rc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path, default=ROOT, help="repository to run (default: this one)")
    ap.add_argument("--config", help="config file, relative to the checkout (default config/config.yaml; "
                    "with --from-run, the one in the run's Snakemake log)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--label", default="dev", help="run label; the commit and config name are appended")
    ap.add_argument("--results", default=str(RESULTS), help="results file ('-': print only)")
    ap.add_argument("--workdir", type=Path, help="work folder (default: a fresh temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--from-run", type=Path, help="tabulate this finished run folder instead of running")
    ap.add_argument("--drop", metavar="RUN", help="remove the run RUN (its full key) from the results file and stop")
    ap.add_argument("--wall", type=float, help="with --from-run: the run's wall time (default: Snakemake's log span)")
    args = ap.parse_args(argv)

    if args.drop:
        write_results(Path(args.results), args.drop, None, None)
        return
    checkout = args.checkout.resolve()
    mach = machine_info()
    info = {"commit": commit_of(checkout), "config": "", "cores": str(args.cores),
            "machine": f"{mach['nproc']} cores, {mach['cpu']}, {mach['ram_gib']} GiB, load average at start {mach['load']}"}
    status = "ok"
    if args.from_run:
        workdir = args.from_run.resolve()
        run = read_run(workdir)
        wall = args.wall if args.wall is not None else (run.log_seconds or 0.0)
        info["config"] = args.config or run.config or "unknown"
        info["run folder"] = str(workdir)
    else:
        info["config"] = args.config or "config/config.yaml"
        config = Path(info["config"])
        if not config.is_absolute():
            config = checkout / config if (checkout / config).exists() else config.resolve()
        workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="surroflow-bench-"))).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        wall, rc = run_workflow(checkout, config, workdir, args.cores)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
        run = read_run(workdir)
        info["command"] = (f"snakemake -s {checkout}/Snakefile -d <tmp> --configfile {config} "
                           f"--workflow-profile {checkout}/workflow/profiles/default --cores {args.cores}")
        info["load average at end"] = "/".join(f"{x:.2f}" for x in os.getloadavg())
    info["measured"] = datetime.now().strftime("%Y-%m-%d %H:%M")
    key = f"{args.label} {info['commit']}, {Path(info['config']).name}"
    s = summarise(run, args.cores, wall)
    if s["failed"]:
        status = (f"{status}, " if status != "ok" else "") + f"{s['failed']} failed job(s)"
    row = summary_row(key, status, s, mach)
    text = section(key, s, accuracy(workdir), info, generation_solver(workdir, run))
    print(SUMMARY_HEAD + "\n" + row + "\n\n" + text)
    if args.results != "-":
        write_results(Path(args.results), key, row, text)
    if not args.from_run and not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not args.from_run:
        print(f"run folder kept: {workdir}")


if __name__ == "__main__":
    main()
