"""The one way the tests run snakemake: on a config, in a temporary folder, as a user would.

Shared by tests/workflow, tests/fault and tests/hpc (``from ..snakemake_runner import ...``).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Mapping

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def write_config(workdir: Path, config: Mapping) -> Path:
    """``config`` as ``workdir/config.yaml``."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return path


def snakemake_cmd(workdir: Path, config: Mapping | Path | None, *extra: str, cores: int | None = 2) -> list[str]:
    """The command line: the project's Snakefile, ``-d workdir``, ``--configfile`` (a mapping
    is written to ``workdir/config.yaml``; ``None``: no config given, the built-in one applies)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--nocolor"]
    if config is not None:
        cfg = write_config(workdir, config) if isinstance(config, Mapping) else Path(config)
        cmd += ["--configfile", str(cfg)]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    return cmd + list(extra)


def snakemake(workdir: Path, config: Mapping | Path | None, *extra: str, cores: int | None = 2,
              timeout: float = 600, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run snakemake and wait; stdout and stderr captured as text."""
    return subprocess.run(snakemake_cmd(workdir, config, *extra, cores=cores), capture_output=True,
                          text=True, timeout=timeout, cwd=workdir, env={**os.environ, **(env or {})})


def run_test_config(workdir: Path, name: str) -> Path:
    """Run ``tests/config/<name>.yaml`` (one study) to the end in ``workdir``; its results folder."""
    cfg = load_yaml(ROOT / "tests" / "config" / f"{name}.yaml")
    res = snakemake(workdir, cfg)
    assert res.returncode == 0, res.stderr[-4000:]
    (study,) = cfg["studies"]
    return workdir / cfg.get("results", "results") / study


def snakemake_background(workdir: Path, config: Mapping | Path, *extra: str, cores: int = 2,
                         log: Path | None = None) -> subprocess.Popen:
    """Started in its own session, so that `os.killpg` takes snakemake, its jobs and their dask
    workers down together, as a crashed login node or an OOM-killed job would."""
    cmd = snakemake_cmd(workdir, config, *extra, cores=cores)
    with open(log or workdir.parent / f"{workdir.name}.log", "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                start_new_session=True)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table snakemake prints before running (or in a dry run): rule -> jobs."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Job stats:"]
    if not starts:
        return counts
    for line in lines[starts[0] + 3:]:
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line)
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def fingerprint(path: Path) -> tuple[int, str]:
    """(modification time in ns, sha256) of a file."""
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()
