from surroflow.logging_utils import exit_on_error
from surroflow.surrogates.stage import train_surrogate_file

with exit_on_error():
    train_surrogate_file(snakemake.input.train, snakemake.input.bases, snakemake.output.model,
                         name=snakemake.wildcards.surrogate, surrogate_cfg=snakemake.params.surrogate,
                         study=snakemake.wildcards.study, config_section=snakemake.params.section,
                         n_threads=snakemake.threads, log_file=snakemake.log[0])
