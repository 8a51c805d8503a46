"""Workflow planning (surroflow.stages.plan): the functions behind workflow/rules/common.smk."""
from __future__ import annotations

import pytest

from surroflow import SurroflowError
from surroflow.config import validate_config
from surroflow.simulators import SimulatorUnavailable, register
from surroflow.simulators.burgers import Burgers1D
from surroflow.stages.plan import NO_STUDY, Plan


class _Missing(Burgers1D):
    name = "test_plan_missing_solver"

    def __init__(self, **settings):
        raise SimulatorUnavailable("solver 'nope' not on PATH")


def _config():
    register(_Missing)
    burgers = {"simulator": {"name": "burgers", "settings": {"n_x": 32, "n_time": 5}},
               "design": {"n_train": 17, "n_test": 4, "batch_size": 8}}
    return validate_config({"studies": {
        "a": {**burgers, "surrogates": {"r": {"kind": "rbf"},
                                        "m": {"kind": "mlp", "params": {"device": "cuda"}},
                                        "c": {"kind": "mlp", "params": {"device": "cpu"}}}},
        "b": {**burgers, "reduction": {"variables": ["u"], "clustering": {"n_clusters": 2}},
              "surrogates": {"loc": {"kind": "rbf", "basis": "local"}}},
        "gone": {**burgers, "simulator": {"name": "test_plan_missing_solver"}, "surrogates": {"r": {"kind": "rbf"}}},
        "f": {"task": "forecast", "simulator": {"name": "lorenz63"}, "design": {"n_train": 2, "n_test": 2},
              "forecast": {"models": {"dmd": {"kind": "dmd"}, "net": {"kind": "node", "params": {"device": "cuda"}}}}},
    }})


def test_unavailable_simulator_skips_its_study_with_the_reason():
    plan = Plan(_config())
    assert plan.studies() == ["a", "b", "f"]
    assert plan.studies("parametric") == ["a", "b"] and plan.studies("forecast") == ["f"]
    assert plan.skipped == {"gone": "solver 'nope' not on PATH"}
    assert plan.declared("parametric") == ["a", "b", "gone"]


def test_study_regexes():
    plan = Plan(_config())
    assert plan.study_regex("forecast") == "f"
    assert plan.study_regex(files=True) == NO_STUDY


def test_batches_variables_and_local_basis():
    plan = Plan(_config())
    assert plan.batch_ids("a", "train") == ["0000", "0001", "0002"]     # 17 samples, 8 per batch
    assert plan.batch_ids("a", "test") == ["0000"]
    assert plan.variables("a") == ["u"]
    assert plan.local_surrogates("a") == [] and plan.local_surrogates("b") == ["loc"]
    assert plan.local_variable("b") == "u"
    with pytest.raises(SurroflowError, match="studies.a.surrogates: basis 'local' needs reduction.clustering"):
        plan.local_variable("a")


def test_gpu_requests_only_for_torch_models_on_cuda():
    plan = Plan(_config())
    assert [plan.surrogate_gpus("a", s) for s in ("r", "m", "c")] == [0, 1, 0]
    assert plan.forecaster_gpus("f", "net") == 1 and plan.forecaster_gpus("f", "dmd") == 0


def test_forecast_models_include_the_baselines_first():
    models = Plan(_config()).forecast_models("f")
    assert list(models) == ["persistence", "climatology", "dmd", "net"]
    assert models["persistence"] == {"kind": "persistence", "params": {}, "state": "full"}
    assert models["dmd"]["state"] == "inherit"


def test_unknown_study_is_named():
    with pytest.raises(SurroflowError, match=r"studies.zzz: no such study; defined: \['a', 'b', 'f', 'gone'\]"):
        Plan(_config()).study("zzz")


@pytest.mark.parametrize("timeout,kind,run_cluster,threads", [
    (None, "local", True, 1), (5.0, "local", True, 1), (5.0, "local", False, 2), (None, "slurm", True, 2)])
def test_generation_jobs_claim_the_cores_they_use(timeout, kind, run_cluster, threads):
    """Lorenz-63 integrates a batch in one vectorised call: on the local kind the job runs it in
    its own process on one core.  With a per-sample timeout its samples are dask tasks: on the
    run's LocalCluster (dask.run_cluster) the job only waits (one core), in a cluster of its own
    it claims one core per worker; so does a job on a SLURMCluster."""
    from surroflow.simulators import get_simulator
    from surroflow.stages.generate_batch import runs_in_process
    cfg = validate_config({"dask": {"kind": kind, "run_cluster": run_cluster}, "studies": {"chaos": {
        "task": "forecast", "simulator": {"name": "lorenz63", "timeout_s": timeout},
        "design": {"n_train": 4, "n_test": 2}}}})
    assert Plan(cfg).generate_threads("chaos", 2) == threads
    assert runs_in_process(get_simulator("lorenz63"), timeout, cfg["dask"]) == (timeout is None and kind == "local")
