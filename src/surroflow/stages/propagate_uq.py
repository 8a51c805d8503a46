"""Stage ``propagate_uq``: propagation of input uncertainty and global sensitivity on one
trained surrogate of a parametric study (its ``uq`` section), checked against the
high-fidelity model run in this job.

Inputs: ``train`` (generate data of the training split: the generation cost), ``bases`` (the
bases the surrogate was trained on: the reduction cost), ``model`` (the ``train_surrogate`` file
of ``uq.surrogate``).  Outputs: ``statistics`` (NetCDF: QoI draws and statistics with confidence
intervals, mean and std fields, Sobol indices, costs), ``summary`` (CSV; ``summary_html``
beside it), ``figures`` (a folder: ``qoi_distributions``, ``sobol_indices``).  The test design
is never read.  The high-fidelity check runs the study's simulator on ``uq.n_hf_check`` draws
of the input distribution with the generate stage's own runner
(:func:`surroflow.stages.generate_batch.run_samples`: one vectorised call, or one sample at a
time with the simulator's timeout) and dataset assembly (``batch_dataset``).
Settings: ``ctx.section["uq"]``; ``ctx.section["surrogates"]`` holds only ``uq.surrogate``.
"""
from __future__ import annotations

from typing import Any, Mapping

from . import StageContext


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def hf_runner(simulator: Mapping[str, Any]) -> Any:
    """``run(design) -> generate dataset`` for the study's simulator, or None when it cannot
    run here (a ``files`` study, an unavailable solver)."""
    from ..design import design_records
    from ..simulators import SimulatorUnavailable, get_simulator, simulator_class
    from ..simulators.files import FilesSource
    from .generate_batch import batch_dataset, run_samples
    name, settings = str(simulator["name"]), dict(simulator.get("settings") or {})
    try:
        if issubclass(simulator_class(name), FilesSource):
            return None
        sim = get_simulator(name, **settings)
    except SimulatorUnavailable:
        return None

    def run(design: Any) -> Any:
        return batch_dataset(sim, design, run_samples(name, settings, design_records(design), simulator["timeout_s"]))
    return run


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    from ..uq.files import propagate_uq_files
    ctx.check_inputs(inputs)
    propagate_uq_files(
        str(inputs["model"]), str(inputs["train"]), _as_list(inputs["bases"]), ctx.section["uq"],
        statistics_path=str(outputs["statistics"]), summary_path=str(outputs["summary"]),
        summary_html=str(outputs["summary_html"]), figures_dir=str(outputs["figures"]),
        run_hf=hf_runner(ctx.section["simulator"]),
        attrs=ctx.provenance(inputs, str(outputs["statistics"])))


__all__ = ["run", "hf_runner"]
