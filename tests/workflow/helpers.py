"""Run snakemake on a config in a temporary directory, as a user would."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, config: dict | Path, *extra: str, cores: int = 2,
              timeout: float = 600) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(config, dict):
        cfg = workdir / "config.yaml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        cfg = Path(config)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(cfg), "--cores", str(cores), "--nocolor", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())
