from surroflow.simulators.files import import_files_for_study

import_files_for_study(snakemake.input.table, snakemake.output.data, split=snakemake.wildcards.split,
                       settings=snakemake.params.settings, study=snakemake.wildcards.study,
                       config_section=snakemake.params.section, log_file=snakemake.log[0])
