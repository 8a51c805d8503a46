"""Snakemake runs for the fault tests: blocking, or in the background to be killed."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Mapping

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def snakemake_cmd(workdir: Path, config: Mapping, *extra: str, cores: int = 2) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
            "--configfile", str(cfg), "--cores", str(cores), "--nocolor", *extra]


def snakemake(workdir: Path, config: Mapping, *extra: str, cores: int = 2,
              timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, config, *extra, cores=cores), capture_output=True,
                          text=True, timeout=timeout, cwd=workdir)


def snakemake_background(workdir: Path, config: Mapping, *extra: str, cores: int = 2,
                         log: Path | None = None) -> subprocess.Popen:
    """Started in its own session, so that `os.killpg` takes snakemake, its jobs and their dask
    workers down together, as a crashed login node or an OOM-killed job would."""
    cmd = snakemake_cmd(workdir, config, *extra, cores=cores)
    with open(log or workdir.parent / f"{workdir.name}.log", "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                start_new_session=True)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table snakemake prints before running."""
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

