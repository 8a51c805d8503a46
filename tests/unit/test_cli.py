"""The command line: validate (errors and notes) and provenance (stale artifacts by rule name)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from surroflow.cli import check_provenance, main
from surroflow.config import stage_sections, validate_config
from surroflow.io import provenance, write_dataset
from surroflow.lineage import lineage_attrs

ROOT = Path(__file__).resolve().parents[2]


def test_validate_ok_and_bad(tmp_path, capsys):
    assert main(["validate", str(ROOT / "tests" / "config" / "tiny.yaml")]) == 0
    assert "valid; studies: tiny" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"studies": {"s": {"simulator": {"name": "burgers", "settings": {"nx": 3}},
                                                     "design": {"n_train": 2, "n_test": 1}}}}))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "studies.s.simulator.settings.nx: unknown setting" in err and "Traceback" not in err


def _artifact(path: Path, stage: str, section, inputs=None, **attrs) -> None:
    ds = xr.Dataset({"x": (("i",), np.arange(3.0))},
                    attrs={**provenance(stage, section, "s"), **lineage_attrs(inputs or {}, path), **attrs})
    write_dataset(ds, path)


@pytest.fixture
def config(tmp_path) -> Path:
    cfg = {"studies": {"s": {"simulator": {"name": "burgers"}, "design": {"n_train": 2, "n_test": 1},
                             "surrogates": {"r": {"kind": "rbf"}, "l": {"kind": "linear"}}}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_provenance_uses_rule_names_and_model_names(tmp_path, config):
    study = validate_config(yaml.safe_load(config.read_text()))["studies"]["s"]
    res = tmp_path / "results"
    (res / "s" / "train").mkdir(parents=True)
    (res / "s" / "generate").mkdir(parents=True)
    train = res / "s" / "generate" / "train.nc"
    _artifact(train, "collect_batches", stage_sections(study, "collect_batches"), split="train")
    _artifact(res / "s" / "train" / "r.nc", "train_surrogate", stage_sections(study, "train_surrogate", "r"),
              {"train": str(train)}, model_name="r")
    _artifact(res / "s" / "train" / "l.nc", "train_surrogate", stage_sections(study, "train_surrogate", "r"),
              model_name="l")
    _artifact(res / "s" / "old.nc", "forecast_train", stage_sections(study, "collect_batches"))
    rows, stale = check_provenance(res, config)
    assert len(rows) == 4
    assert sorted(Path(r["file"]).name for r in stale) == ["l.nc", "old.nc"]
    old = next(r for r in stale if r["file"].endswith("old.nc"))
    assert "stage 'forecast_train' is unknown" in old["status"]
    # the model's train input rewritten after the model was made: the model is stale, not the data
    _artifact(train, "collect_batches", stage_sections(study, "collect_batches"), split="train")
    rows, stale = check_provenance(res, config)
    r = next(r for r in stale if r["file"].endswith("r.nc"))
    assert "its train input" in r["status"] and "changed after it was made" in r["status"]
    assert not any(x["file"].endswith("train.nc") for x in stale)
    # a generate file copied over the other split's name is named
    (res / "s" / "generate" / "test.nc").write_bytes(train.read_bytes())
    rows, stale = check_provenance(res, config)
    t = next(r for r in stale if r["file"].endswith("test.nc"))
    assert "holds the 'train' split but is named test.nc" in t["status"]
    assert main(["provenance", str(res), "--config", str(config)]) == 1
