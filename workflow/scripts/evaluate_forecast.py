"""Roll out and score every forecast surrogate of a study (rule evaluate_forecast)."""
from surroflow.forecast.pipeline import evaluate_forecast_file

evaluate_forecast_file(snakemake.input.test, list(snakemake.input.models), snakemake.output.metrics,  # noqa: F821
                       snakemake.output.summary, snakemake.output.figures, snakemake.params.forecast,  # noqa: F821
                       snakemake.log[0], study=snakemake.wildcards.study,  # noqa: F821
                       config_section=snakemake.params.section)  # noqa: F821
