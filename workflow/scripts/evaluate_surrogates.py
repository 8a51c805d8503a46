from surroflow.evaluation.stage import evaluate_surrogates_file
from surroflow.logging_utils import exit_on_error

with exit_on_error():
    out = snakemake.output
    evaluate_surrogates_file(
        snakemake.input.test, snakemake.input.train, snakemake.input.bases,
        {name: snakemake.input[f"model_{name}"] for name in snakemake.params.surrogates},
        out.metrics, out.summary,
        {k: out[k] for k in ("singular_values", "fields", "error_parameters", "error_split")},
        evaluation_cfg=snakemake.params.evaluation, study=snakemake.wildcards.study,
        config_section=snakemake.params.section, log_file=snakemake.log[0])
