"""How long `snakemake -n` takes, and how many jobs it plans, as the design grows.

    python bench/bench_dag.py                 # 10^2..10^4 train samples, batch sizes 1/16/100/1000
    python bench/bench_dag.py --n 10000 --batch-size 100 --repeat 5 --results /tmp/RESULTS.md

Each point is a fresh `snakemake -n` process on the tiny study (tests/config/tiny.yaml) with
``design.n_train`` = n and ``design.n_test`` = n/10, in an empty working folder: the wall time
includes Python start-up and DAG construction, as a user sees it.  A batch size of 1 (one job
per sample, what the workflow would be without batching) is measured too, for contrast.

The table goes into the ``bench_dag`` block of ``bench/RESULTS.md`` (``--results`` for another
file, ``--results -`` to only print it).
"""
from __future__ import annotations

import argparse
import copy
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: the blocks of bench/RESULTS.md this script writes (see bench/results_table.py)
TABLES = ("bench_dag",)


def job_counts(output: str) -> dict[str, int]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    counts = {}
    for line in lines[start + 3:]:
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line)
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run(n_train: int, batch_size: int, workdir: Path) -> tuple[float, dict[str, int]]:
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text()))
    study = next(iter(cfg["studies"].values()))
    study["design"].update(n_train=n_train, n_test=max(1, n_train // 10), batch_size=batch_size)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "-n", "--quiet", "rules", "--nocolor"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return seconds, job_counts(res.stdout + res.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="*", default=[100, 1000, 10_000])
    ap.add_argument("--batch-size", type=int, nargs="*", default=[1, 16, 100, 1000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"),
                    help="markdown file whose bench_dag block receives the table ('-': print only)")
    args = ap.parse_args()
    lines = ["| n_train + n_test | batch_size | batches | jobs | `snakemake -n` s (median) |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    print("\n".join(lines))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            for bs in args.batch_size:
                if bs == 1 and n > 10_000:
                    continue
                times, counts = [], {}
                for r in range(args.repeat):
                    s, counts = dry_run(n, bs, Path(tmp) / f"n{n}_bs{bs}_{r}")
                    times.append(s)
                n_test = max(1, n // 10)
                assert counts["generate_batch"] == math.ceil(n / bs) + math.ceil(n_test / bs)
                lines.append(f"| {n + n_test} | {bs} | {counts['generate_batch']} | {counts['total']} | "
                             f"{statistics.median(times):.2f} |")
                print(lines[-1], flush=True)
    if args.results != "-":
        from results_table import write_block
        write_block(args.results, "bench_dag", "\n".join(lines))


if __name__ == "__main__":
    main()
