"""Fit one forecast surrogate (rule train_forecaster)."""
from surroflow.forecast.pipeline import train_forecaster_file

model = snakemake.params.model  # noqa: F821 - injected by Snakemake
train_forecaster_file(snakemake.input.train, snakemake.output.model, model["kind"], model["params"],  # noqa: F821
                      snakemake.params.forecast, snakemake.log[0], name=snakemake.wildcards.model,  # noqa: F821
                      state=None if model["state"] == "inherit" else model["state"],
                      study=snakemake.wildcards.study, config_section=snakemake.params.section,  # noqa: F821
                      threads=snakemake.threads)  # noqa: F821
