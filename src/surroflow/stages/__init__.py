"""Stages: one module per workflow rule, one calling convention.

The rule ``fit_pod`` is the module :mod:`surroflow.stages.fit_pod`, writes artifacts whose
``stage`` attribute is ``"fit_pod"``, and depends on the config sections
``surroflow.config.STAGE_SECTIONS["fit_pod"]``: one name everywhere.

Every stage module defines::

    def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None

``inputs``/``outputs`` are the rule's *named* inputs and outputs (paths, or lists of paths);
``ctx`` carries the study, the config sections the stage depends on (already validated, the
schema's defaults filled in: stage code never invents a default), the wildcards and the job's
resources.  Python users call the same function the rule calls::

    from surroflow.stages import StageContext, fit_pod
    fit_pod.run({"train": "results/burgers/generate/train.nc"},
                {"basis": "results/burgers/reduce/u.nc"},
                StageContext.for_study(cfg, "burgers", "fit_pod", variable="u"))

``ctx.section`` is :func:`surroflow.config.stage_sections` of the study: for
``train_surrogate`` it holds ``surrogate: {name: {kind, params, basis}}``, for
``train_forecaster`` the ``forecast`` section without ``models`` plus ``model: {name: {kind,
params, state}}`` (baselines included); the model's name is also ``ctx.wildcards["surrogate"]``
/ ``ctx.wildcards["model"]``.  An output that is a folder (``figures`` of the evaluations)
is created by the stage itself.

Each ``workflow/scripts/<rule>.py`` is ``from surroflow.stages import run_rule;
run_rule(snakemake)`` (under ``if __name__ == "__main__"``, for dask's spawned workers).  :func:`run_rule` dispatches on the rule's name, logs to the rule's log
file and turns a :class:`~surroflow.SurroflowError` into one line on stderr and exit status 1
(no traceback).
"""
from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import lineage
from ..io import config_sha256, provenance, remove_stale_temporaries
from ..lineage import Expect

#: the rules, in DAG order; each has a module of the same name in this package
STAGES = ("make_design", "generate_batch", "collect_batches", "import_files", "fit_pod", "fit_local_pod",
          "plot_projection_study", "train_surrogate", "evaluate_surrogates", "train_forecaster",
          "write_equations", "evaluate_forecast", "evaluate_online", "discover_model_error", "evaluate_model_error",
          "propagate_uq", "generate_round", "adapt_round", "evaluate_adaptive", "overview")

#: the rules that make generate data (a ``{split}.nc`` of a study)
GENERATE = ("collect_batches", "import_files")
#: what each stage's named inputs must be (:func:`surroflow.lineage.check_inputs`); ``"{split}"``
#: is the job's split wildcard.  Inputs not named here (the files table) are recorded, not checked.
EXPECTED_INPUTS: dict[str, dict[str, Expect]] = {
    "make_design": {},
    "generate_batch": {"design": Expect(("make_design",), "{split}")},
    "collect_batches": {"design": Expect(("make_design",), "{split}"),
                        "batches": Expect(("generate_batch",), "{split}")},
    "import_files": {},
    "fit_pod": {"train": Expect(GENERATE, "train")},
    "fit_local_pod": {"train": Expect(GENERATE, "train")},
    "plot_projection_study": {"train": Expect(GENERATE, "train"), "test": Expect(GENERATE, "test")},
    "train_surrogate": {"train": Expect(GENERATE, "train"), "bases": Expect(("fit_pod", "fit_local_pod")),
                        "calibration": Expect(GENERATE, "calibration")},
    "evaluate_surrogates": {"train": Expect(GENERATE, "train"), "test": Expect(GENERATE, "test"),
                            "bases": Expect(("fit_pod",)), "models": Expect(("train_surrogate",), model=True),
                            "projection_study": Expect(("plot_projection_study",))},
    "train_forecaster": {"train": Expect(GENERATE, "train")},
    "write_equations": {"model": Expect(("train_forecaster",), model=True), "train": Expect(GENERATE, "train")},
    "evaluate_forecast": {"test": Expect(GENERATE, "test"), "models": Expect(("train_forecaster",), model=True)},
    "evaluate_online": {"train": Expect(GENERATE, "train"), "test": Expect(GENERATE, "test")},
    "discover_model_error": {"train": Expect(GENERATE, "train")},
    "evaluate_model_error": {"test": Expect(GENERATE, "test"), "correction": Expect(("discover_model_error",), "train")},
    "propagate_uq": {"train": Expect(GENERATE, "train"), "bases": Expect(("fit_pod", "fit_local_pod")),
                     "model": Expect(("train_surrogate",), model=True)},
    "generate_round": {"design": Expect(("adapt_round",), "train")},
    "adapt_round": {"train": Expect(GENERATE, "train"), "rounds": Expect(("generate_round",), "train")},
    "evaluate_adaptive": {"train": Expect(GENERATE, "train"), "test": Expect(GENERATE, "test"),
                          "indicators": Expect(("adapt_round",)), "models": Expect(("adapt_round",), "train")},
    "overview": {},          # summary tables (CSV) of every study: not artifacts with lineage
}


@dataclass
class StageContext:
    """Everything a stage receives besides its files."""

    stage: str
    study: str
    #: the config sections this stage depends on (``config.stage_sections``): what it may read
    section: Mapping[str, Any]
    wildcards: Mapping[str, str] = field(default_factory=dict)
    threads: int = 1
    mem_mb: int | None = None
    log: str | None = None
    #: the top-level ``dask`` config section (generation and reduction jobs)
    dask: Mapping[str, Any] | None = None

    #: ``{path: attrs}`` of the inputs :meth:`check_inputs` read (their lineage is recorded)
    checked: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def generation_sha256(self) -> str:
        """Hash of the study's generation settings (``task``, ``simulator`` without
        ``max_failure_fraction``, ``design``): the same in every artifact of the study."""
        from ..config import STAGE_SECTIONS
        gen = {k: dict(self.section[k]) if isinstance(self.section[k], Mapping) else self.section[k]
               for k in STAGE_SECTIONS["generate_batch"]}
        gen["simulator"].pop("max_failure_fraction", None)
        return config_sha256(gen)

    def check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Refuse inputs that do not belong together (:func:`surroflow.lineage.check_inputs`
        with this stage's :data:`EXPECTED_INPUTS`); returns ``{path: attrs}``."""
        kinds: dict[str, str] = {}
        if "surrogates" in self.section:
            kinds = {n: s["kind"] for n, s in self.section["surrogates"].items()}
        elif "models" in self.section.get("forecast", {}):
            from ..config import forecast_models
            kinds = {n: m["kind"] for n, m in forecast_models(self.section).items()}
        elif "model" in self.section:          # a stage of one forecast model (its own section)
            kinds = {n: m["kind"] for n, m in self.section["model"].items()}
        self.checked.update(lineage.check_inputs(
            inputs, EXPECTED_INPUTS.get(self.stage, {}), study=self.study, generation=self.generation_sha256,
            split=self.wildcards.get("split"), model_kinds=kinds, reader=self.stage))
        return self.checked

    def provenance(self, inputs: Mapping[str, Any] | None = None, output: str | None = None,
                   **extra: Any) -> dict[str, Any]:
        """Global attributes of the artifact ``output`` this stage writes from ``inputs``:
        :func:`surroflow.io.provenance` (``stage`` = the rule's name), the generation hash, the
        design hash of the inputs, and the lineage of every input file; then ``extra``."""
        attrs = {**provenance(self.stage, self.section, self.study),
                 lineage.GENERATION: self.generation_sha256}
        if inputs is not None:
            if output is None:
                raise ValueError("provenance(inputs=...) needs the output path the lineage is relative to")
            attrs.update(lineage.lineage_attrs(inputs, output, self.checked))
            design = lineage.common_design(self.checked.values())
            if design is not None:
                attrs[lineage.DESIGN] = design
        return {**attrs, **extra}

    @classmethod
    def for_study(cls, config: Mapping[str, Any], study: str, stage: str, *, threads: int = 1,
                  mem_mb: int | None = None, log: str | None = None, **wildcards: str) -> "StageContext":
        """A context from a validated config, as the workflow builds it (for Python callers)."""
        from ..config import stage_sections, study_section
        name = wildcards.get("surrogate") or wildcards.get("model") or wildcards.get("round")
        return cls(stage=stage, study=study, section=stage_sections(study_section(config, study), stage, name),
                   wildcards={"study": study, **wildcards}, threads=threads, mem_mb=mem_mb, log=log,
                   dask=config["dask"])


def run_rule(smk: Any) -> None:
    """Run the stage of the Snakemake job ``smk`` (the ``snakemake`` object of a rule script)."""
    from threadpoolctl import threadpool_limits

    from ..logging_utils import exit_on_error, stage_logger

    stage = str(smk.rule)
    with exit_on_error():
        if stage not in STAGES:
            from .. import SurroflowError
            raise SurroflowError(f"rule {stage!r} has no stage module; stages: {list(STAGES)}")
        module = importlib.import_module(f"{__name__}.{stage}")
        params = dict(smk.params.items())
        # the overview spans the studies: it has no study wildcard
        ctx = StageContext(stage=stage, study=str(smk.wildcards.get("study", "")), section=params["section"],
                           wildcards=dict(smk.wildcards.items()), threads=int(smk.threads),
                           mem_mb=smk.resources.get("mem_mb"), log=smk.log[0] if smk.log else None,
                           dask=params.get("dask"))
        outputs = dict(smk.output.items())
        with stage_logger(None, ctx.log):   # every surroflow.* logger writes to the rule's log
            # temporaries a killed writer of this job's outputs left behind (the job owns them)
            for out in outputs.values():
                for tmp in remove_stale_temporaries(out):
                    logging.getLogger("surroflow").warning("removed %s, left by a killed writer", tmp)
            t0 = time.perf_counter()
            # BLAS/OpenMP pools held to the job's cores (Snakemake sets OMP_NUM_THREADS only for
            # shell jobs): jobs side by side do not oversubscribe the machine, timings hold still
            with threadpool_limits(ctx.threads):
                module.run(dict(smk.input.items()), outputs, ctx)
            # the compute inside the job (bench/bench_pipeline.py sets it against the job's wall time)
            logging.getLogger("surroflow").info("%s: stage computed in %.3f s", stage, time.perf_counter() - t0)


__all__ = ["STAGES", "StageContext", "run_rule"]
