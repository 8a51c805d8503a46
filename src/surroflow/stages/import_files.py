"""Stage ``import_files``: one split of a ``files`` study (existing results) as a generate dataset.

Input ``table`` (the study's CSV), output ``data``.  The dataset is
:func:`surroflow.simulators.files.files_split_dataset` (declared parameter columns only; the
table's ``split`` column, or a seeded split honouring ``design.n_train``/``n_test``); no
solver ran, so its ``wall_time`` is NaN (never 0) and the evaluation reports no speed-up.
"""
from __future__ import annotations

import logging
from typing import Mapping

from ..io import write_dataset
from ..lineage import DESIGN, content_sha256, fingerprint
from ..simulators.files import files_split_dataset
from . import StageContext

log = logging.getLogger("surroflow.import_files")


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    split = ctx.wildcards["split"]
    ds = files_split_dataset(ctx.section["simulator"]["settings"], ctx.section["design"], split)
    # both splits come from the one table: its content is their design
    design_sha = content_sha256(extra=f"{ctx.generation_sha256}:{fingerprint(inputs['table'])}")
    # the lineage lists the table and every result file of the split (their fingerprints)
    made_from = {**inputs, "results": [str(f) for f in ds["source_file"].values]}
    ds.attrs.update(ctx.provenance(made_from, outputs["data"], split=split, **{DESIGN: design_sha}))
    write_dataset(ds, outputs["data"])
    log.info("%s: imported the %d %s samples of %s", outputs["data"], ds.sizes["sample"], split, inputs["table"])
