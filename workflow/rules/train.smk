# train: one surrogate per configured name, on the reduced coordinates.


rule train_surrogate:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        bases=get_train_bases,
    output:
        model=f"{RESULTS}/{{study}}/train/{{surrogate}}.nc",
    params:
        surrogate=lambda w: study_cfg(w.study)["surrogates"][w.surrogate],
        section=sections("train"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
        gpu=get_surrogate_gpus,
    conda:
        CONDA_ENV
    log:
        "logs/train_surrogate/{study}_{surrogate}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/train_surrogate_{{surrogate}}.tsv"
    script:
        "../scripts/train_surrogate.py"
