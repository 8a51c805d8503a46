from surroflow.logging_utils import exit_on_error
from surroflow.reduction.stage import plot_projection_study_stage

with exit_on_error():
    plot_projection_study_stage(snakemake.input.train, snakemake.input.test, snakemake.output.curves,
                                snakemake.output.figure, variable=snakemake.wildcards.variable,
                                reduction_cfg=snakemake.params.reduction, study=snakemake.wildcards.study,
                                config_section=snakemake.params.section, log_file=snakemake.log[0])
