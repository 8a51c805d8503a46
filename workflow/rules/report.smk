# report: the front page of `snakemake --report` (every study's description, summary table,
# best model against its baseline and headline figures, and one overview table across studies).


rule overview:
    input:
        summaries=get_all_targets,
        uq=get_uq_targets,
        intro=os.path.join(workflow.basedir, "workflow", "report", "workflow.rst"),
    output:
        html=report(
            f"{RESULTS}/overview/overview.html",
            caption="../report/overview.rst",
            category="overview",
        ),
        rst=f"{RESULTS}/overview/front_page.rst",
    params:
        section=get_overview_section,
        version=SURROFLOW_VERSION,
    conda:
        CONDA_ENV
    log:
        "logs/overview.log",
    script:
        "../scripts/overview.py"
