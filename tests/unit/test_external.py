"""The external-command simulator: failures, timeouts, retries, clean-up and hostile values."""
from __future__ import annotations

import json
import os
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from surroflow import SurroflowError
from surroflow.simulators import SampleFailure, get_simulator
from surroflow.readers import available_readers, get_reader, register_reader
from surroflow.simulators.process import CommandRunner, format_value

SOLVER = """\
import json, pathlib, sys
# toy solver: reads "name = value" lines, writes y(x) = a * x + b to <jobname>.json
inp = pathlib.Path(sys.argv[1])
vals = dict(line.split(" = ") for line in inp.read_text().splitlines() if " = " in line)
a, b = float(vals["a"]), float(vals["b"])
counter = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else None
if counter is not None:                      # fail until the counter reaches sys.argv[3]
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    if n < int(sys.argv[3]):
        print("transient failure", n)
        sys.exit(3)
print("solving", a, b)
pathlib.Path(inp.stem + ".json").write_text(json.dumps({"y": [a * x + b for x in range(5)]}))
"""


def read_json(workdir: Path, jobname: str) -> dict[str, np.ndarray]:
    data = json.loads((workdir / f"{jobname}.json").read_text())
    return {k: np.asarray(v, dtype=float) for k, v in data.items()}


register_reader("test_json", read_json)


@pytest.fixture
def case(tmp_path):
    (tmp_path / "solver.py").write_text(SOLVER)
    (tmp_path / "model.tpl").write_text("# toy input\na = $a\nb = $b\nc = $c\n")
    return tmp_path


def settings(case: Path, **over):
    s = {
        "command": [sys.executable, str(case / "solver.py"), "{input}"],
        "template": str(case / "model.tpl"),
        "input_name": "job.in",
        "reader": "test_json",
        "parameters": {"a": {"low": 0, "high": 2, "units": "1"},
                       "b": {"low": -1, "high": 1, "default": 0.5}},
        "constants": {"c": 7.5},
        "outputs": {"y": {"dims": ["x"], "units": "m", "long_name": "response"}},
        "coordinates": {"x": {"values": [0, 1, 2, 3, 4], "units": "m"}},
        "workdir_root": str(case / "runs"),
        "timeout_s": 30,
    }
    s.update(over)
    return s


def test_runs_and_reads(case):
    sim = get_simulator("external", **settings(case))
    assert [p.name for p in sim.parameters()] == ["a", "b"]
    out = sim.run_sample({"a": 0.5, "b": -0.25})
    np.testing.assert_allclose(out["y"], 0.5 * np.arange(5) - 0.25)
    assert not any((case / "runs").iterdir())          # keep_workdirs=failed: success cleaned up


def test_parameter_defaults(case):
    sim = get_simulator("external", **settings(case))
    np.testing.assert_allclose(sim.run_sample({"a": 1.0})["y"], np.arange(5) + 0.5)
    with pytest.raises(SampleFailure, match=r"missing \['a'\]"):
        sim.run_sample({"b": 1.0})


def test_input_holds_exact_numbers(case):
    sim = get_simulator("external", **settings(case, keep_workdirs="all"))
    sim.run_sample({"a": 0.1, "b": 1 / 3}, sample_id="s0")
    text = (case / "runs" / "s0" / "job.in").read_text()
    assert "a = 0.1\n" in text and "b = 0.3333333333333333\n" in text and "c = 7.5\n" in text
    assert (case / "runs" / "s0" / "solver.log").read_text().count("solving") == 1


def test_failing_command_is_flagged_and_log_kept(case):
    sim = get_simulator("external", **settings(case, command=["/bin/false"]))
    with pytest.raises(SampleFailure) as err:
        sim.run_sample({"a": 1.0, "b": 0.0}, sample_id="bad-1")
    assert err.value.status == "failed"
    assert "exit code 1" in err.value.reason
    log = case / "runs" / "bad-1" / "solver.log"
    assert str(log) in err.value.reason and log.exists()
    assert (case / "runs" / "bad-1" / "job.in").exists()      # the failed folder is kept


def test_timeout_is_flagged(case):
    sim = get_simulator("external", **settings(case, command=["/bin/sleep", "10"], timeout_s=0.3,
                                                retries=1))
    with pytest.raises(SampleFailure) as err:
        sim.run_sample({"a": 1.0, "b": 0.0}, sample_id="slow")
    assert err.value.status == "timeout"
    assert "timed out" in err.value.reason and "2 attempts" in err.value.reason
    log = (case / "runs" / "slow" / "solver.log").read_text()
    assert "attempt 2/2" in log and log.count("timed out") == 2


def test_retries_are_bounded_and_counted(case):
    counter = case / "count.txt"
    cmd = [sys.executable, str(case / "solver.py"), "{input}", str(counter), "3"]
    sim = get_simulator("external", **settings(case, command=cmd, retries=2))
    out = sim.run_sample({"a": 2.0, "b": 1.0})
    np.testing.assert_allclose(out["y"], 2.0 * np.arange(5) + 1.0)
    assert counter.read_text() == "3"                          # two failures, then success
    counter.unlink()
    sim = get_simulator("external", **settings(case, command=cmd, retries=1))
    with pytest.raises(SampleFailure, match="2 attempts"):
        sim.run_sample({"a": 2.0, "b": 1.0})
    assert counter.read_text() == "2"


def test_unreadable_results_are_flagged(case):
    sim = get_simulator("external", **settings(case, command=["/bin/true"], keep_workdirs="none"))
    with pytest.raises(SampleFailure, match="unreadable results") as err:
        sim.run_sample({"a": 1.0, "b": 0.0}, sample_id="noresult")
    assert err.value.status == "failed"
    left = sorted(p.name for p in (case / "runs" / "noresult").iterdir())
    assert left == ["solver.log"]                               # keep_workdirs=none keeps the log


def test_wrong_shape_is_flagged(case):
    sim = get_simulator("external", **settings(case, coordinates={"x": {"size": 4}}))
    with pytest.raises(SampleFailure, match=r"shape \(5,\), expected \(4,\)"):
        sim.run_sample({"a": 1.0, "b": 0.0})


HOSTILE = ["1; rm -rf /", "$(touch pwned)", "`touch pwned`", "../../etc/passwd", "1.5", "",
           float("nan"), float("inf"), -float("inf"), None, True, [1.0], {"x": 1}]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_rejected_before_anything_runs(case, value, monkeypatch):
    monkeypatch.chdir(case)
    sim = get_simulator("external", **settings(case))
    before = sorted(p.name for p in case.iterdir())
    with pytest.raises(SampleFailure) as err:
        sim.run_sample({"a": value, "b": 0.0})
    assert err.value.status == "failed" and "parameter a=" in err.value.reason
    assert sorted(p.name for p in case.iterdir()) == before     # no workdir, no 'pwned'
    assert not (case / "runs").exists()
    assert not Path("/tmp/pwned").exists()


def test_hostile_parameter_names_and_sample_ids(case):
    sim = get_simulator("external", **settings(case))
    with pytest.raises(SampleFailure, match="unknown"):
        sim.run_sample({"a": 1.0, "b": 0.0, "../x": 1.0})
    for bad in ("../../etc", "a/b", "..", "", ".hidden", "x" * 200):
        with pytest.raises(SurroflowError, match="sample id"):
            sim.run_sample({"a": 1.0, "b": 0.0}, sample_id=bad)
    with pytest.raises(SurroflowError, match="identifiers"):
        get_simulator("external", **settings(case, parameters={"a;rm": {"low": 0, "high": 1}}))


def test_command_must_be_an_argument_list(case):
    with pytest.raises(SurroflowError, match="list of strings"):
        get_simulator("external", **settings(case, command="ccx -i {jobname}"))
    with pytest.raises(SurroflowError, match="whole arguments"):
        get_simulator("external", **settings(case, command=["/bin/true", "--in={input}"]))
    with pytest.raises(SurroflowError, match=r"simulator.settings.shell: unknown setting of simulator 'external'"):
        get_simulator("external", **settings(case, shell=True))
    with pytest.raises(SurroflowError, match="neither parameters nor constants"):
        get_simulator("external", **settings(case, constants={}))


def test_missing_program_has_a_clear_message(case):
    with pytest.raises(SurroflowError, match="not found on PATH"):
        get_simulator("external", **settings(case, command=["surroflow-no-such-solver", "{input}"]))


def test_format_value():
    assert format_value("x", 0.1) == "0.1"
    assert format_value("x", np.float32(0.5)) == "0.5"
    assert format_value("x", np.int64(3)) == "3.0"
    assert len(format_value("x", -1.2345678901234567e-100)) <= 20


def test_pickles_and_runs_concurrently(case):
    """What dask does: ship the simulator to workers and run many samples at once."""
    sim = pickle.loads(pickle.dumps(get_simulator("external", **settings(case))))
    params = [{"a": float(a), "b": 0.0} for a in np.linspace(0, 2, 6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outs = list(pool.map(sim.run_sample, params))
    for p, out in zip(params, outs):
        np.testing.assert_allclose(out["y"], p["a"] * np.arange(5))


def test_runner_env_and_static_files(case):
    script = case / "env.py"
    script.write_text("import os, json, pathlib\n"
                      "pathlib.Path('job.json').write_text(json.dumps({'y': [float(os.environ['OMP_NUM_THREADS']),"
                      " float(pathlib.Path('extra.txt').read_text())]}))\n")
    r = CommandRunner([sys.executable, str(script)], "", "job.in", "test_json", case / "runs",
                      files={"extra.txt": b"42"}, env={"OMP_NUM_THREADS": "1"})
    np.testing.assert_allclose(r.run({})["y"], [1.0, 42.0])
    assert os.listdir(case / "runs") == []


def test_timeout_kills_the_whole_process_group(case):
    """A solver that starts a helper process: on timeout the helper dies too (no orphan keeps
    writing into the working directory)."""
    script = case / "spawner.py"
    script.write_text("import subprocess, sys, time\n"
                      "child = subprocess.Popen([sys.executable, '-c', 'import time, pathlib; time.sleep(1.5); "
                      "pathlib.Path(\"orphan.txt\").write_text(\"alive\")'])\n"
                      "open('child.pid', 'w').write(str(child.pid))\n"
                      "time.sleep(30)\n")
    r = CommandRunner([sys.executable, str(script)], "", "job.in", "test_json", case / "runs",
                      timeout_s=0.5, keep_workdirs="all")
    with pytest.raises(SampleFailure) as err:
        r.run({}, sample_id="group")
    assert err.value.status == "timeout"
    wd = case / "runs" / "group"
    assert (wd / "child.pid").exists()                 # the helper had started
    import time
    time.sleep(2.0)                                    # past the moment it would have written
    assert not (wd / "orphan.txt").exists()


def test_reader_registry(tmp_path):
    import xarray as xr
    from surroflow.mesh import rectangle, to_meshio
    assert {"frd", "netcdf", "meshio", "test_json"} <= set(available_readers())
    assert get_reader("test_json") is read_json
    import json as json_module
    assert get_reader("python:json:loads") is json_module.loads
    with pytest.raises(SurroflowError, match=r"unknown result reader 'nope'; allowed: \[.*'frd'"):
        get_reader("nope")
    with pytest.raises(SurroflowError, match="not a function"):
        get_reader("python:json:nothing_here")
    with pytest.raises(SurroflowError, match="letters, digits"):
        register_reader("bad name", read_json)
    xr.Dataset({"y": ("x", np.arange(3.0))}).to_netcdf(tmp_path / "job.nc")
    np.testing.assert_allclose(get_reader("netcdf")(tmp_path, "job")["y"], [0, 1, 2])
    with pytest.raises(SurroflowError, match="not found"):
        get_reader("netcdf")(tmp_path, "other")
    mesh = rectangle(2.0, 1.0, 2, 1)
    import meshio
    meshio.write(tmp_path / "job.vtu", to_meshio(mesh, {"T": mesh.points[:, 0]}))
    out = get_reader("meshio")(tmp_path, "job")
    np.testing.assert_allclose(out["T"], mesh.points[:, 0])
    assert out["node_coordinates"].shape == (mesh.n_nodes, 3)
    with pytest.raises(SurroflowError, match="no result file other.vtu"):
        get_reader("meshio")(tmp_path, "other")


@pytest.mark.parametrize("kw, message", [
    ({"timeout_s": "x"}, "simulator.settings.timeout_s: expected a finite number > 0 or null, got 'x'"),
    ({"timeout_s": True}, "simulator.settings.timeout_s: expected a finite number > 0 or null, got True"),
    ({"retries": 1.0}, "simulator.settings.retries: expected an integer >= 0, got 1.0"),
    ({"keep_workdirs": "some"}, "simulator.settings.keep_workdirs: expected one of ['failed', 'all', 'none'], "
                                "got 'some'"),
    ({"env": ["a"]}, "simulator.settings.env: expected a mapping of environment variable names to strings, "
                     "got ['a']"),
    ({"env": {"OMP_NUM_THREADS": 1}}, "simulator.settings.env.OMP_NUM_THREADS: expected a string, got 1"),
    ({"files": ["a.txt"]}, "simulator.settings.files: expected a mapping of file names to contents"),
    ({"files": {"../x": b""}}, "simulator.settings.files: static file '../x' is not allowed"),
    ({"input_name": 3}, "simulator.settings.input_name: expected a non-empty string, got 3"),
    ({"reader": None}, "simulator.settings.reader: expected a non-empty string, got None"),
    ({"workdir_root": 7}, "simulator.settings.workdir_root: expected a non-empty string (a path) or null, got 7"),
])
def test_runner_settings_are_checked_with_their_key_before_the_program(case, kw, message):
    """Every value is a sentence naming simulator.settings.<key> (no raw TypeError or
    AttributeError), checked before the program is looked for (a missing program would hide it)."""
    args = {"command": ["surroflow-no-such-solver", "{input}"], "template_text": "a = $a\n",
            "input_name": "job.in", "reader": "test_json", "workdir_root": case / "runs", **kw}
    with pytest.raises(SurroflowError) as err:
        CommandRunner(**args)
    assert str(err.value).startswith(message), str(err.value)
    assert type(err.value) is SurroflowError                # not SimulatorUnavailable


def test_external_defaults_and_program_key(case):
    sim = get_simulator("external", **settings(case, input_name=None, workdir_root=None, timeout_s=None))
    assert sim.runner.input_name == "model.tpl" and sim.runner.timeout_s is None and sim.runner.private_root
    with pytest.raises(SurroflowError, match=r"^simulator.settings.command\[0\]: expected a program name"):
        get_simulator("external", **settings(case, command=["{input}"]))
