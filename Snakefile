# surroflow: simulator -> design -> high-fidelity runs -> POD -> surrogates -> evaluation/report.
# All logic lives in the package src/surroflow; the rules below only wire files together.
import os

from snakemake.utils import min_version

min_version("9.0")


# The built-in studies apply only when no config is given: `snakemake --configfile my.yaml`
# runs exactly the studies of my.yaml (config/README.md).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/reduce.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/model_error.smk"
include: "workflow/rules/uq.smk"
include: "workflow/rules/adaptive.smk"
include: "workflow/rules/report.smk"


# the report opens on the front page that rule overview wrote (the static description before it)
_FRONT_PAGE = os.path.abspath(os.path.join(RESULTS, "overview", "front_page.rst"))


report: _FRONT_PAGE if os.path.exists(_FRONT_PAGE) else "workflow/report/workflow.rst"


rule all:
    input:
        get_all_targets,
        get_uq_targets,
        get_equation_targets,
        get_online_targets,
        get_adaptive_targets,
        rules.overview.output,
    default_target: True


# One run writes a results folder at a time (surroflow.stages.lock): taken when jobs start,
# given back when the run ends; dry runs take none.
# One dask LocalCluster for the run when it has batches of per-sample tasks (dask.run_cluster).
onstart:
    take_results_lock()
    start_run_cluster()


onsuccess:
    stop_run_cluster()
    release_results_lock()


onerror:
    stop_run_cluster()
    release_results_lock()
