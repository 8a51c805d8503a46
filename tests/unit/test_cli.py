"""The command line: validate (errors and notes), provenance (stale artifacts by rule name),
simulators (what each declares, as text and JSON) and every subcommand's help."""
from __future__ import annotations

import json
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


# --------------------------------------------------------------------------- simulators
def test_simulators_json_describes_a_builtin(capsys):
    assert main(["simulators", "burgers", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == "burgers" and row["origin"] == "built-in"
    assert row["class"] == "surroflow.simulators.burgers:Burgers1D" and row["tasks"] == ["parametric"]
    params = {p["name"]: p for p in row["parameters"]}
    assert list(params) == ["nu", "amplitude", "shift"]
    assert params["nu"] == {"name": "nu", "low": 0.01, "high": 0.1, "units": "m2 s-1", "log_scale": True,
                            "long_name": "kinematic viscosity"}
    assert (params["amplitude"]["low"], params["amplitude"]["high"], params["amplitude"]["units"]) == (0.5, 1.5, "m s-1")
    assert params["shift"]["high"] == pytest.approx(np.pi / 2) and params["shift"]["units"] == "m"
    assert row["outputs"] == [{"name": "u", "dims": ["time", "x"], "units": "m s-1", "long_name": "velocity"}]
    settings = {s["name"]: s for s in row["settings"]}
    assert list(settings) == ["n_x", "n_grid", "t_end", "n_time", "dt", "scheme"]   # setting_defaults
    assert settings["n_x"] == {"name": "n_x", "type": "int", "nullable": False, "allowed": ">= 8",
                               "default": 256, "required": False}
    assert settings["n_grid"]["type"] == "int" and settings["n_grid"]["nullable"] is True
    assert settings["n_grid"]["default"] is None
    assert settings["dt"]["type"] == "float" and settings["dt"]["nullable"] is True
    assert settings["scheme"]["type"] == "choice" and settings["scheme"]["default"] == "etdrk4"
    assert "etdrk4" in settings["scheme"]["allowed"] and row["notes"] == []


def test_simulators_lists_every_simulator_without_crashing(capsys):
    from surroflow.simulators import available
    assert main(["simulators"]) == 0
    out = capsys.readouterr().out
    for name in available():
        assert f"\n{name}  [" in f"\n{out}" or f"\n{name}: unavailable" in f"\n{out}", name
    assert "nu         [0.01, 0.1]" in out and "u  (time, x)  m s-1  velocity" in out
    # simulators that need settings to be built are listed, and say why a part is unknown
    assert main(["simulators", "external", "files", "--json"]) == 0
    external, files = json.loads(capsys.readouterr().out)
    assert external["parameters"] is None and external["outputs"] is None
    assert external["notes"][0].startswith("cannot be built without settings: simulator.settings.command: required")
    assert "template" in {s["name"] for s in external["settings"]}
    assert files["parameters"] is None and files["settings"] is None
    assert any(n.startswith("settings: not declared") for n in files["notes"])
    assert main(["simulators", "nope"]) == 2
    assert "nope: unavailable (unknown simulator 'nope'" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["validate", "simulators", "provenance", "cluster", "config-docs", "export"])
def test_every_subcommand_has_a_description_and_examples(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:\n  python -m surroflow " + command in text
    assert len(text.split("\n\n")[1]) > 40            # the description, after the usage
