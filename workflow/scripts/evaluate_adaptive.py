from surroflow.stages import run_rule

# guarded: dask workers start by spawning and must not rerun the stage
if __name__ == "__main__":
    run_rule(snakemake)  # noqa: F821 - injected by Snakemake
