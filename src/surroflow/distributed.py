"""The dask cluster of a stage, built from the ``dask`` config section.

One module builds every cluster; rules and stage functions only call :func:`dask_client`.

``kind: local`` (default)
    With ``run_cluster: true`` (default) the workflow starts one LocalCluster for the whole run
    when it has batches of per-sample tasks (:func:`serve_run_cluster`, from the Snakefile's
    ``onstart``; its address in the file named by :data:`RUN_CLUSTER_ENV`), and every job joins
    it: the cluster's start-up (3-10 s) is paid once per run, not once per batch.  A job that
    finds no run cluster, or cannot reach it, starts its own.
    A job's own LocalCluster is sized to the rule's ``threads`` (one single-threaded worker per
    thread) and ``resources.mem_mb`` (split evenly), with single-threaded BLAS in the workers.
    ``processes: false`` runs the workers as threads of the job's process (no spawn cost; a
    simulator that crashes the interpreter then takes the job with it).
``kind: slurm``
    dask-jobqueue's SLURMCluster: ``jobs`` batch jobs of ``cores`` cores, ``memory`` and
    ``walltime`` each, ``processes`` worker processes per job; ``adaptive: true`` lets the
    number of jobs follow the load between ``minimum_jobs`` and ``jobs`` (and replaces jobs that
    SLURM kills or preempts).  The scheduler runs inside the calling process; workers must be
    able to reach it over the network and to run the same Python (``sys.executable``, or
    activate an environment in ``prologue``).
``kind: address``
    Join a running scheduler at ``address`` (its workers must be able to import surroflow and
    the simulator).

The one line a job logs about its cluster names the cluster's dashboard address too, where
it serves one (distributed's dashboard needs bokeh; SLURM clusters serve none).

Fault semantics: a task whose worker dies is rescheduled on another worker, up to dask's
``distributed.scheduler.allowed-failures`` (3 by default), then it fails with ``KilledWorker``.
Tasks submitted by surroflow have no side effects (they return results; the calling process
writes the file), so a retried task is safe.  A cluster that fails to start (a worker that dies
while it starts, a scheduler that does not answer) is started again once, then the job stops
with one sentence naming the cluster kind and what to check.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import SurroflowError

log = logging.getLogger("surroflow.distributed")

KINDS = ("local", "address", "slurm")
_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: the scheduler's HTTP server binds a free port: fixed ports (8787) clash when several jobs
#: share a node, and dask warns on every clash
_HTTP_ANY_PORT = ":0"
#: where dask.slurm.log_directory null puts the worker job logs
DEFAULT_SLURM_LOG_DIRECTORY = "logs/dask_slurm"
#: how long joining a running scheduler (kind address) may take
CONNECT_TIMEOUT = "30s"
#: environment variable naming the file with the address of the run's LocalCluster
RUN_CLUSTER_ENV = "SURROFLOW_DASK_RUN_CLUSTER"
#: how long joining the run's cluster may take before a job starts its own
RUN_CLUSTER_TIMEOUT = "10s"


def _single_threaded_env() -> dict[str, str]:
    return {v: "1" for v in _BLAS_VARS}


def dask_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``dask`` section with the schema's defaults filled in (``None``: all defaults)."""
    import copy

    from .config import fill_defaults, load_schema
    schema = load_schema()
    return fill_defaults(copy.deepcopy(dict(cfg or {})), schema["$defs"]["dask"], schema)


def _slurm_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    s = dict(cfg["slurm"])
    if s["processes"] > s["cores"]:
        raise SurroflowError(f"dask.slurm.processes={s['processes']} exceeds dask.slurm.cores={s['cores']}: "
                             "each worker process needs at least one core")
    if s["minimum_jobs"] > s["jobs"]:
        raise SurroflowError(f"dask.slurm.minimum_jobs={s['minimum_jobs']} exceeds dask.slurm.jobs={s['jobs']}")
    return s


def _slurm_log_directory(s: Mapping[str, Any]) -> Path:
    return Path(s["log_directory"] or DEFAULT_SLURM_LOG_DIRECTORY).resolve()


def describe(cfg: Mapping[str, Any] | None, n_workers: int = 1) -> str:
    """One line naming the cluster a config gives (for stage logs)."""
    cfg = dask_settings(cfg)
    kind = cfg["kind"]
    if kind == "local":
        mode = "processes" if cfg["processes"] else "threads"
        return f"LocalCluster with {max(1, int(n_workers))} single-threaded worker {mode}"
    if kind == "address":
        return f"scheduler at {cfg['address']}"
    if kind == "slurm":
        s = _slurm_settings(cfg)
        scaling = (f"adaptive {s['minimum_jobs']}..{s['jobs']} jobs" if s["adaptive"]
                   else f"{s['jobs']} job(s)")
        return (f"SLURMCluster: {scaling} x {s['cores']} cores, {s['processes']} worker process(es), "
                f"{s['memory']}, walltime {s['walltime']}, partition {s['partition'] or '(default)'}")
    return f"unknown kind {kind!r}"


def make_cluster(cfg: Mapping[str, Any] | None = None, n_workers: int = 1,
                 memory_mb: int | None = None) -> tuple[Any, str | None]:
    """Build the configured cluster: ``(cluster, None)`` for local/slurm, ``(None, address)``.

    The caller owns the cluster and must close it (:func:`dask_client` does).
    """
    cfg = dask_settings(cfg)
    kind = cfg["kind"]
    if kind == "local":
        from distributed import LocalCluster

        n = max(1, int(n_workers))
        mem = f"{max(256, int(memory_mb) // n)}MiB" if memory_mb else "auto"
        for k, v in _single_threaded_env().items():   # inherited by nanny-spawned workers
            os.environ.setdefault(k, v)
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=bool(cfg["processes"]),
            memory_limit=mem, dashboard_address=None, worker_dashboard_address=None,
            scheduler_kwargs={"dashboard_address": _HTTP_ANY_PORT},
            silence_logs=logging.ERROR)
        return cluster, None
    if kind == "address":
        address = cfg["address"]
        if not address:
            raise SurroflowError("dask.address: required when dask.kind is 'address'")
        return None, str(address)
    if kind == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as exc:  # pragma: no cover - pinned dependency
            raise SurroflowError(f"dask.kind=slurm needs dask-jobqueue ({exc})") from None
        s = _slurm_settings(cfg)
        log_dir = _slurm_log_directory(s)
        log_dir.mkdir(parents=True, exist_ok=True)
        prologue = list(s["prologue"])
        prologue += [f"export {k}={v}" for k, v in _single_threaded_env().items()]
        cluster = SLURMCluster(
            cores=s["cores"], processes=s["processes"], memory=str(s["memory"]),
            walltime=str(s["walltime"]), queue=s["partition"], account=s["account"],
            job_name="surroflow-dask", python=sys.executable,
            job_script_prologue=prologue,
            local_directory=s["local_directory"], log_directory=str(log_dir),
            job_extra_directives=list(s["extra_directives"]),
            interface=s["interface"],   # network interface on multi-NIC clusters (e.g. ib0)
            scheduler_options={"dashboard_address": _HTTP_ANY_PORT, "dashboard": False},
            silence_logs="error",
        )
        return cluster, None
    raise SurroflowError(f"dask.kind={kind!r} is not allowed; allowed: {list(KINDS)}")


def _check_job_script(cluster: Any) -> None:
    """``sbatch --test-only`` on the worker job script: a partition, account or memory request
    that SLURM refuses fails here, at once and with SLURM's reason, instead of after
    ``start_timeout`` (dask-jobqueue only logs failed submissions)."""
    script = cluster.job_script()
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="surroflow-dask-") as f:
        f.write(script)
        f.flush()
        try:
            res = subprocess.run(["sbatch", "--test-only", f.name], capture_output=True, text=True,
                                 timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SurroflowError(f"dask.kind=slurm: cannot run sbatch ({exc})") from None
    if res.returncode != 0:
        reason = " ".join(res.stderr.split()) or f"exit code {res.returncode}"
        raise SurroflowError(f"dask.slurm: SLURM refuses the worker job ({reason}); check "
                             f"dask.slurm cores/memory/walltime/partition/account.\nJob script:\n{script}")


def _start_slurm_workers(cluster: Any, client: Any, cfg: Mapping[str, Any]) -> None:
    s = _slurm_settings(cfg)
    timeout = float(s["start_timeout"])
    _check_job_script(cluster)
    if s["adaptive"]:
        cluster.adapt(minimum_jobs=s["minimum_jobs"], maximum_jobs=s["jobs"])
        if s["minimum_jobs"] == 0:
            return   # jobs are submitted once tasks arrive; nothing to wait for yet
        wait_for = s["minimum_jobs"] * s["processes"]
    else:
        cluster.scale(jobs=s["jobs"])
        wait_for = 1
    try:
        client.wait_for_workers(wait_for, timeout=timeout)
    except TimeoutError:
        raise SurroflowError(
            f"dask.slurm: no dask worker joined within start_timeout={timeout:g} s; check the "
            f"partition/account and `squeue`, and the worker logs in {_slurm_log_directory(s)}."
            f"\nJob script:\n{cluster.job_script()}") from None


#: how many times :func:`dask_client` tries to start a cluster (a worker that dies while the
#: cluster starts, a scheduler that does not answer at once): the first try and one retry
START_ATTEMPTS = 2


def _close(client: Any, cluster: Any) -> None:
    if client is not None:
        try:
            client.close()
        except Exception as exc:  # noqa: BLE001 - never hide the error that got us here
            log.warning("closing the dask client failed (%s: %s)", type(exc).__name__, exc)
    if cluster is not None:
        try:
            cluster.close()
        except Exception as exc:  # noqa: BLE001 - never hide the error that got us here
            log.warning("closing the dask cluster failed (%s: %s)", type(exc).__name__, exc)


def dashboard_link(obj: Any) -> str | None:
    """The dashboard address of a client or cluster (``dashboard_link``), or ``None`` when it
    serves none (no bokeh, ``dashboard: False``) or cannot say."""
    try:
        link = obj.dashboard_link
    except Exception:  # noqa: BLE001 - distributed raises KeyError etc. when there is no dashboard
        return None
    return str(link) if link else None


def _with_dashboard(text: str, obj: Any) -> str:
    link = dashboard_link(obj)
    return f"{text}, dashboard {link}" if link else text


def run_cluster_address() -> str | None:
    """The scheduler address of the run's LocalCluster, when the workflow started one."""
    path = os.environ.get(RUN_CLUSTER_ENV)
    if not path:
        return None
    try:
        return str(json.loads(Path(path).read_text())["address"])
    except (OSError, ValueError, KeyError):
        return None


def serve_run_cluster(address_file: str | os.PathLike[str], n_workers: int, *,
                      memory_mb: int | None = None, processes: bool = True, parent_pid: int | None = None,
                      poll_s: float = 1.0) -> None:
    """Run a LocalCluster of ``n_workers`` single-threaded workers until SIGTERM/SIGINT or until
    the process ``parent_pid`` (the workflow) is gone; its address is written atomically to
    ``address_file`` once it is up, and the file is removed when it stops."""
    import signal
    import time

    cluster, _ = make_cluster({"kind": "local", "processes": processes}, n_workers, memory_mb)
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    path = Path(address_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"address": cluster.scheduler_address, "pid": os.getpid(),
                                   "workers": int(n_workers)}))
        os.replace(tmp, path)
        log.info("%s", _with_dashboard(f"dask: run cluster {cluster.scheduler_address} with {n_workers} "
                                       "worker(s)", cluster))
        while not stop["now"]:
            if parent_pid is not None and not pid_alive(parent_pid):
                log.warning("dask: the workflow (pid %d) is gone: stopping the run cluster", parent_pid)
                break
            time.sleep(poll_s)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        _close(None, cluster)


def pid_alive(pid: int) -> bool:
    """True while the process ``pid`` exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _join_run_cluster() -> Any | None:
    """A client of the run's LocalCluster, or ``None`` (none started, or unreachable: warned)."""
    address = run_cluster_address()
    if address is None:
        return None
    from distributed import Client
    try:
        return Client(address, timeout=RUN_CLUSTER_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - fall back to a cluster of the job's own
        log.warning("dask: the run cluster at %s cannot be reached (%s); starting this job's own",
                    address, _one_line(exc))
        return None


def _start(cfg: Mapping[str, Any], n_workers: int, memory_mb: int | None) -> tuple[Any, Any]:
    """``(cluster, client)`` started; whatever was started is closed again when a step fails."""
    from distributed import Client

    if cfg["kind"] == "local" and cfg["run_cluster"]:
        client = _join_run_cluster()
        if client is not None:
            return None, client

    cluster, address = make_cluster(cfg, n_workers=n_workers, memory_mb=memory_mb)
    client = None
    try:
        if cluster is None:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        else:
            client = Client(cluster)
            if cfg["kind"] == "slurm":
                _start_slurm_workers(cluster, client, cfg)
    except BaseException:
        _close(client, cluster)
        raise
    return cluster, client


def _what_to_check(cfg: Mapping[str, Any]) -> str:
    kind = cfg["kind"]
    if kind == "address":
        return (f"check that the scheduler at {cfg['address']} is running and reachable from this host and that "
                "its workers can import surroflow and the simulator")
    if kind == "slurm":
        return (f"check dask.slurm (partition, account, memory, walltime), `squeue`, and the worker logs in "
                f"{_slurm_log_directory(cfg['slurm'])}")
    return ("check the job's memory (resources mem_mb) and threads, that worker processes can start on this "
            "machine (dask.processes: false runs them as threads), and the worker errors in the rule's log")


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def dask_client(cfg: Mapping[str, Any] | None = None, n_workers: int = 1,
                memory_mb: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for the configured cluster; closed (and the cluster shut down,
    its SLURM jobs cancelled) on exit, also when the body raises.

    A cluster that fails to start (a worker that dies while it starts, a scheduler that does
    not answer) is retried once (:data:`START_ATTEMPTS`); a second failure is a
    :class:`~surroflow.SurroflowError` naming the cluster kind, the error and what to check.
    A settings error (a :class:`~surroflow.SurroflowError`) is not retried.
    """
    cfg = dask_settings(cfg)
    kind = cfg["kind"]
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            cluster, client = _start(cfg, n_workers, memory_mb)
            break
        except SurroflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - distributed raises many types while starting
            if attempt < START_ATTEMPTS:
                log.warning("dask: starting the cluster (kind %s: %s) failed (%s); retrying once", kind,
                            describe(cfg, n_workers), _one_line(exc))
                continue
            raise SurroflowError(
                f"dask.kind={kind}: the dask cluster ({describe(cfg, n_workers)}) failed to start twice "
                f"(last error {_one_line(exc)}); {_what_to_check(cfg)}") from None
    try:
        log.info("dask: %s", _with_dashboard(f"the run's LocalCluster at {client.scheduler.address}"
                                             if cluster is None and kind == "local" else describe(cfg, n_workers),
                                             client))
        yield client
    finally:
        _close(client, cluster)


__all__ = ["KINDS", "START_ATTEMPTS", "RUN_CLUSTER_ENV", "dask_settings", "describe", "make_cluster",
           "dask_client", "dashboard_link", "serve_run_cluster", "run_cluster_address"]
