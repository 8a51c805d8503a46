"""Plug-in simulators: an installed package names its simulators in the entry-point group
``surroflow.simulators`` and a config uses them by name (``name: heat1d``).

The package is built in a temporary folder and installed with pip into ``<tmp>/site``; every
check runs ``python -m surroflow`` in a subprocess with ``PYTHONPATH=<tmp>/site`` (the
environment a workflow job would have), never with ``sys.path`` tricks in this process.
The plug-in's module appends a line to ``$HEAT1D_MARKER`` when imported, so a test can see
whether it was imported (the registry lists entry points without importing them).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "heat1d-pkg"
version = "0.1.0"
dependencies = []

[project.entry-points."surroflow.simulators"]
heat1d = "heat1d_pkg.sim:Heat1D"

[tool.setuptools]
packages = ["heat1d_pkg"]
"""

SIM = '''\
"""The heat equation T_t = kappa T_xx on [0, 1], T = 0 at both ends, from T(0, x) =
amplitude sin(pi x): the exact solution amplitude exp(-kappa pi^2 t) sin(pi x)."""
from __future__ import annotations

import math
import os

import numpy as np

from surroflow.simulators.base import Coordinate, OutputVariable, Parameter, Simulator, check_setting

if os.environ.get("HEAT1D_MARKER"):
    with open(os.environ["HEAT1D_MARKER"], "a") as f:
        f.write("imported\\n")


class Heat1D(Simulator):
    """1D heat equation with its exact solution (a plug-in test simulator)."""

    name = "heat1d"
    time_dim = "time"

    def __init__(self, n_x: int = 33, t_end: float = 0.5, n_time: int = 11) -> None:
        super().__init__(n_x=n_x, t_end=t_end, n_time=n_time)
        self.n_x = check_setting("n_x", n_x, "int", minimum=3)
        self.t_end = check_setting("t_end", t_end, "float", exclusive_minimum=0)
        self.n_time = check_setting("n_time", n_time, "int", minimum=2)

    def parameters(self):
        return [Parameter("kappa", 0.01, 0.1, "m2 s-1", "diffusivity", log_scale=True),
                Parameter("amplitude", 0.5, 2.0, "K", "amplitude of the initial sine")]

    def outputs(self):
        return [OutputVariable("T", ("time", "x"), "K", "temperature")]

    def coordinates(self):
        return {"x": Coordinate(("x",), np.linspace(0.0, 1.0, self.n_x), "m", "position"),
                "time": Coordinate(("time",), np.linspace(0.0, self.t_end, self.n_time), "s", "time")}

    def run_sample(self, params):
        p = self.complete_parameters(params, {"kappa": 0.05, "amplitude": 1.0})
        c = self.coordinates()
        decay = np.exp(-p["kappa"] * math.pi ** 2 * c["time"].values)
        return {"T": p["amplitude"] * decay[:, None] * np.sin(math.pi * c["x"].values)[None, :]}
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """``heat1d-pkg`` installed by pip (offline, no build isolation) into a folder of its own."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not importable: pip cannot build the plug-in package offline")
    root = tmp_path_factory.mktemp("plugin")
    pkg = root / "heat1d-pkg"
    (pkg / "heat1d_pkg").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "heat1d_pkg" / "__init__.py").write_text("")
    (pkg / "heat1d_pkg" / "sim.py").write_text(SIM)
    target = root / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                          "--no-index", "--disable-pip-version-check", "--quiet", "--target", str(target),
                          str(pkg)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    [ep] = list(target.glob("heat1d_pkg-*.dist-info/entry_points.txt"))
    assert 'heat1d = heat1d_pkg.sim:Heat1D' in ep.read_text()
    return target


def _run(args: list[str], site: Path, cwd: Path, *, safe: bool = False, extra: Path | None = None
         ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SURROFLOW_SAFE_MODE", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site, extra) if p is not None)
    env["HEAT1D_MARKER"] = str(cwd / "imported.txt")
    if safe:
        env["SURROFLOW_SAFE_MODE"] = "1"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def _config(tmp_path: Path, name: str = "heat1d") -> Path:
    cfg = {"studies": {"heat": {"simulator": {"name": name, "settings": {"n_x": 17},
                                              "parameters": {"kappa": [0.02, 0.05]}},
                                "design": {"n_train": 4, "n_test": 2},
                                "surrogates": {"rbf": {"kind": "rbf"}}}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _dist_info(folder: Path, dist: str, entry_points: str) -> Path:
    """A distribution written by hand (METADATA + entry_points.txt), found by importlib.metadata
    on ``PYTHONPATH`` exactly like an installed one."""
    info = folder / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[surroflow.simulators]\n{entry_points}\n")
    return folder


# --------------------------------------------------------------------------- a working plug-in
def test_config_naming_the_plugin_validates(site, tmp_path):
    out = _run(["-m", "surroflow", "validate", str(_config(tmp_path))], site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "valid; studies: heat" in out.stdout
    # a setting the plug-in refuses: its own check, named by key
    cfg = yaml.safe_load(_config(tmp_path).read_text())
    cfg["studies"]["heat"]["simulator"]["settings"]["n_x"] = 2
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    bad = _run(["-m", "surroflow", "validate", str(tmp_path / "bad.yaml")], site, tmp_path)
    assert bad.returncode == 2
    assert "studies.heat.simulator.settings.n_x: expected an integer >= 3, got 2" in bad.stderr


def test_listed_without_import_and_run_after_lazy_import(site, tmp_path):
    code = ("import sys\n"
            "from surroflow.simulators import available, get_simulator\n"
            "assert 'heat1d' in available() and 'burgers' in available()\n"
            "assert 'heat1d_pkg' not in sys.modules\n"
            "import pathlib; assert not pathlib.Path('imported.txt').exists()\n"
            "import numpy as np\n"
            "sim = get_simulator('heat1d', n_x=9, n_time=5)\n"
            "T = sim.run_sample({'kappa': 0.05, 'amplitude': 2.0})['T']\n"
            "x = np.linspace(0, 1, 9); t = np.linspace(0, 0.5, 5)\n"
            "exact = 2.0 * np.exp(-0.05 * np.pi ** 2 * t)[:, None] * np.sin(np.pi * x)[None, :]\n"
            "np.testing.assert_allclose(T, exact, rtol=1e-12, atol=1e-14)\n"
            "print('ok', type(sim).__module__)\n")
    out = _run(["-c", code], site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "heat1d_pkg.sim"]
    assert (tmp_path / "imported.txt").read_text() == "imported\n"


def test_simulators_json_lists_the_plugin(site, tmp_path):
    out = _run(["-m", "surroflow", "simulators", "--json"], site, tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert {"burgers", "heat1d", "files", "external"} <= set(rows)
    heat = rows["heat1d"]
    assert heat["origin"] == "entry-point" and heat["entry_point"] == "heat1d = heat1d_pkg.sim:Heat1D"
    assert heat["distribution"] == "heat1d-pkg 0.1.0" and heat["class"] == "heat1d_pkg.sim:Heat1D"
    assert heat["parameters"] == [
        {"name": "kappa", "low": 0.01, "high": 0.1, "units": "m2 s-1", "log_scale": True, "long_name": "diffusivity"},
        {"name": "amplitude", "low": 0.5, "high": 2.0, "units": "K", "log_scale": False,
         "long_name": "amplitude of the initial sine"}]
    assert heat["outputs"] == [{"name": "T", "dims": ["time", "x"], "units": "K", "long_name": "temperature"}]
    settings = {s["name"]: s for s in heat["settings"]}
    assert list(settings) == ["n_x", "t_end", "n_time"]          # the signature of __init__
    assert settings["n_x"] == {"name": "n_x", "type": "int", "nullable": False, "allowed": ">= 3",
                               "default": 33, "required": False}
    assert settings["t_end"]["type"] == "float" and settings["t_end"]["allowed"] == "> 0"
    assert settings["t_end"]["default"] == 0.5 and heat["notes"] == []
    # the text form says the same
    text = _run(["-m", "surroflow", "simulators", "heat1d"], site, tmp_path).stdout
    assert "entry point heat1d = heat1d_pkg.sim:Heat1D of heat1d-pkg 0.1.0" in text
    assert "kappa      [0.01, 0.1]  m2 s-1  log  diffusivity" in text
    assert "n_x     int >= 3   default 33" in text


def test_safe_mode_refuses_the_plugin_before_importing_it(site, tmp_path):
    out = _run(["-m", "surroflow", "validate", str(_config(tmp_path)), "--safe"], site, tmp_path)
    assert out.returncode == 2
    err = " ".join(out.stderr.split())
    assert ("studies.heat.simulator.name: simulator 'heat1d' is plugged in by the entry point "
            "'heat1d = heat1d_pkg.sim:Heat1D' of distribution 'heat1d-pkg' (group "
            "'surroflow.simulators') and imports code; safe mode allows only registered simulators") in err
    assert "Traceback" not in err
    rows = json.loads(_run(["-m", "surroflow", "simulators", "--json"], site, tmp_path, safe=True).stdout)
    heat = next(r for r in rows if r["name"] == "heat1d")
    assert "safe mode" in heat["error"] and "parameters" not in heat
    assert not (tmp_path / "imported.txt").exists()


# --------------------------------------------------------------------------- broken plug-ins
def test_a_plugin_that_fails_to_import_is_one_sentence(site, tmp_path):
    extra = _dist_info(tmp_path / "more", "broken-pkg", "broken = no_such_module.sim:Sim")
    out = _run(["-m", "surroflow", "validate", str(_config(tmp_path, "broken"))], site, tmp_path, extra=extra)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert ("studies.heat.simulator.name: simulator 'broken': the entry point 'broken = "
            "no_such_module.sim:Sim' of distribution 'broken-pkg' (group 'surroflow.simulators') "
            "cannot be loaded (ModuleNotFoundError: No module named 'no_such_module')") in out.stderr
    listing = _run(["-m", "surroflow", "simulators"], site, tmp_path, extra=extra)
    assert listing.returncode == 0, listing.stderr        # the listing goes on past it
    assert "broken: unavailable (simulator 'broken': the entry point" in listing.stdout
    assert "heat1d  [parametric]" in listing.stdout


def test_a_builtin_name_cannot_be_taken_over(site, tmp_path):
    extra = _dist_info(tmp_path / "more", "shadow-pkg", "burgers = heat1d_pkg.sim:Heat1D")
    code = ("from surroflow.simulators import simulator_class\n"
            "try:\n    simulator_class('burgers')\nexcept Exception as exc:\n    print(exc)\n")
    out = _run(["-c", code], site, tmp_path, extra=extra)
    assert ("simulator 'burgers' is built in, and the entry point 'burgers = heat1d_pkg.sim:Heat1D' "
            "of distribution 'shadow-pkg' (group 'surroflow.simulators') plugs in another one under "
            "the same name; a built-in name cannot be taken over") in out.stdout
    assert not (tmp_path / "imported.txt").exists()


def test_unknown_name_names_every_form(site, tmp_path):
    code = ("from surroflow.simulators import simulator_class\n"
            "try:\n    simulator_class('navier_stokes')\nexcept KeyError as exc:\n    print(exc)\n")
    out = _run(["-c", code], site, tmp_path)
    assert out.stdout.startswith("unknown simulator 'navier_stokes'; allowed: [")
    assert "'heat1d'" in out.stdout and "'python:package.module:Class'" in out.stdout
    assert "entry point in the group 'surroflow.simulators'" in out.stdout
