"""Fit one forecast surrogate (rule train_forecaster)."""
from surroflow.forecast.pipeline import train_forecaster_file

m = snakemake.params.model  # noqa: F821 - injected by Snakemake
forecast = snakemake.params.forecast  # noqa: F821
train_forecaster_file(
    snakemake.input.train, snakemake.output.model, m["kind"], m["params"], forecast,  # noqa: F821
    snakemake.log[0], name=snakemake.wildcards.model, study=snakemake.wildcards.study,  # noqa: F821
    state=None if m["state"] == "inherit" else m["state"],
    config_section={"forecast": forecast, "model": m}, threads=snakemake.threads)  # noqa: F821
