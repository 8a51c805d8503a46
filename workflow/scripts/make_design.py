from surroflow.generate import make_designs_files
from surroflow.logging_utils import exit_on_error

with exit_on_error():
    make_designs_files(snakemake.output.train, snakemake.output.test, snakemake.params.simulator,
                       snakemake.params.design, study=snakemake.wildcards.study,
                       config_section=snakemake.params.section)
