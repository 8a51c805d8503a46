from surroflow.generate import collect_batches_file
from surroflow.logging_utils import exit_on_error

with exit_on_error():
    collect_batches_file(snakemake.input.batches, snakemake.output.data,
                         max_failure_fraction=snakemake.params.max_failure_fraction,
                         study=snakemake.wildcards.study, config_section=snakemake.params.section,
                         log_file=snakemake.log[0])
