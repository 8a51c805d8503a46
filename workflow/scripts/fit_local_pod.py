from surroflow.logging_utils import exit_on_error
from surroflow.reduction.stage import fit_local_pod_stage

with exit_on_error():
    fit_local_pod_stage(snakemake.input.train, snakemake.output.basis, snakemake.output.criterion,
                        snakemake.output.figure, variable=snakemake.wildcards.variable,
                        reduction_cfg=snakemake.params.reduction, study=snakemake.wildcards.study,
                        config_section=snakemake.params.section, log_file=snakemake.log[0])
