from surroflow.generate import make_designs_files

make_designs_files(snakemake.output.train, snakemake.output.test, snakemake.params.simulator,
                   snakemake.params.design, study=snakemake.wildcards.study,
                   config_section=snakemake.params.section)
