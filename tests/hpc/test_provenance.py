"""Reproducibility: `surroflow provenance` names the artifacts a config change made stale."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from surroflow.io import open_dataset

from .helpers import STUDY, local_config, result_files, write_config

pytestmark = pytest.mark.slow

def _provenance(results, config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surroflow", "provenance", str(results),
                           "--config", str(config)], capture_output=True, text=True, timeout=120)


def _status_lines(stdout: str) -> dict[str, str]:
    """file -> its status line ('current' or 'STALE: ...') from the command's report."""
    lines = stdout.splitlines()
    return {lines[i].strip(): lines[i + 2].strip() for i in range(len(lines) - 2)
            if lines[i].endswith(".nc") and not lines[i].startswith(" ")}


def test_every_artifact_has_provenance_and_stale_files_are_named(local_reference, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(local_reference / "results", results)
    files = result_files(results, STUDY)
    for f in files:
        attrs = open_dataset(results / f, load=False).attrs
        for key in ("surroflow_version", "git_commit", "config_sha256", "created", "stage"):
            assert key in attrs, (f, key)

    cfg = local_config()
    same = write_config(tmp_path / "same", cfg)
    res = _provenance(results, same)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert f"{len(files)} artifact(s), 0 stale" in res.stdout

    # a reduction setting changes: bases, models and metrics are stale; designs and data are not
    cfg["studies"][STUDY]["reduction"]["energy"] = 0.999
    changed = write_config(tmp_path / "changed", cfg)
    res = _provenance(results, changed)
    assert res.returncode == 1, res.stdout[-3000:]
    status = _status_lines(res.stdout)
    assert set(status) == {str(results / f) for f in files}
    stale = {f for f in files if f.split("/")[1] in ("reduce", "train", "evaluation")}
    assert stale and len(stale) < len(files)
    for f in files:
        line = status[str(results / f)]
        if f in stale:
            assert line.startswith("STALE"), (f, line)
            assert f"stale: {results / f}" in res.stdout
        else:
            assert line == "current", (f, line)
            assert f"stale: {results / f}" not in res.stdout
    assert f"{len(files)} artifact(s), {len(stale)} stale" in res.stdout
