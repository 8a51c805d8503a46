from surroflow.generate import generate_batch_file
from surroflow.logging_utils import exit_on_error

# dask workers start by spawning: guard the call so they do not rerun it
if __name__ == "__main__":
    with exit_on_error():
        generate_batch_file(snakemake.input.design, snakemake.output.batch, batch=int(snakemake.wildcards.batch),
                            batch_size=snakemake.params.batch_size, simulator_cfg=snakemake.params.simulator,
                            dask_cfg=snakemake.params.dask, study=snakemake.wildcards.study,
                            config_section=snakemake.params.section, n_workers=snakemake.threads,
                            memory_mb=snakemake.resources.mem_mb, log_file=snakemake.log[0])
