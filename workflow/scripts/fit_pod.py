from surroflow.logging_utils import exit_on_error
from surroflow.reduction.stage import fit_pod_file

# dask workers start by spawning: guard the call so they do not rerun it
if __name__ == "__main__":
    with exit_on_error():
        fit_pod_file(snakemake.input.train, snakemake.input.test, snakemake.output.basis,
                     variable=snakemake.wildcards.variable, reduction_cfg=snakemake.params.reduction,
                     simulator_cfg=snakemake.params.simulator, study=snakemake.wildcards.study,
                     config_section=snakemake.params.section, memory_mb=snakemake.resources.mem_mb,
                     dask_cfg=snakemake.params.dask, n_workers=snakemake.threads,
                     log_file=snakemake.log[0])
