# reduce: POD basis per output variable from the training snapshots.


rule fit_pod:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        test=f"{RESULTS}/{{study}}/generate/test.nc",
    output:
        basis=f"{RESULTS}/{{study}}/reduce/{{variable}}.nc",
    params:
        reduction=lambda w: study_cfg(w.study)["reduction"],
        simulator=get_simulator_section,
        dask=config["dask"],
        section=sections("reduce"),
        version=SURROFLOW_VERSION,
    threads: 2
    resources:
        mem_mb=4000,
    log:
        "logs/fit_pod/{study}_{variable}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/fit_pod_{{variable}}.tsv"
    script:
        "../scripts/fit_pod.py"
