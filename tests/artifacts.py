"""Hand-made artifacts for stage tests: the attributes a stage checks when it reads them.

A stage refuses inputs without lineage (:mod:`surroflow.lineage`), so a test that writes a
synthetic generate dataset, basis or model stamps it as the workflow would: with
:meth:`StageContext.provenance` of a context of the study :data:`STUDY` whose generation
settings are :data:`GENERATION` (the same context the stage under test gets, :func:`context`).
"""
from __future__ import annotations

from typing import Any, Mapping

from surroflow.stages import StageContext

STUDY = "tiny"
#: the generation sections of the hand-made study (their hash is in every stamped artifact)
GENERATION: dict[str, Any] = {
    "task": "parametric",
    "simulator": {"name": "hand_made", "settings": {}, "parameters": {}, "timeout_s": None},
    "design": {"method": "random", "n_train": 1, "n_test": 1, "seed": 0, "batch_size": 1},
}


def context(stage: str, study: str = STUDY, wildcards: Mapping[str, str] | None = None, **section: Any
            ) -> StageContext:
    """The context of ``stage`` in the hand-made study, with extra config ``section`` keys."""
    return StageContext(stage=stage, study=study, section={**GENERATION, **section},
                        wildcards={"study": study, **(wildcards or {})})


def stamp(attrs: Mapping[str, Any], stage: str, path: Any, *, study: str = STUDY,
          design: str = "hand-made-design", **section: Any) -> dict[str, Any]:
    """``attrs`` plus the provenance and lineage that ``stage`` would have written into ``path``
    (no recorded inputs; one design for every stamped artifact unless ``design`` differs)."""
    out = context(stage, study, **section).provenance(inputs={}, output=str(path))
    out["design_sha256"] = design
    return {**out, **dict(attrs), "stage": stage}
