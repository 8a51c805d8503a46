# Two commands on a fresh machine:  `make run`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config/config.yaml

.PHONY: run test test-slurm slurm paper report dag venv clean bench lint validate

venv: $(STAMP)

# pinned dependencies (requirements.lock) + the package, editable
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	@command -v ccx >/dev/null || echo "note: CalculiX (ccx) not found: the structural study is skipped; install it with 'apt-get install calculix-ccx'"
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) --configfile $(CONFIG)
	$(BIN)/snakemake --cores 1 --configfile $(CONFIG) --report results/report.html

paper: $(STAMP)
	$(MAKE) run CONFIG=config/paper.yaml

dag: $(STAMP)
	$(BIN)/snakemake --configfile $(CONFIG) --rulegraph | dot -Tsvg > docs/rulegraph.svg

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the config (schema + semantic checks, no job) and the workflow (snakemake --lint)
validate: $(STAMP)
	$(BIN)/python -m surroflow validate $(CONFIG)

lint: $(STAMP)
	$(BIN)/snakemake --lint --configfile $(CONFIG)

# the SLURM tests on a single-node cluster started on this machine (root, Debian)
test-slurm: $(STAMP)
	bash tests/hpc/local_slurm.sh start
	$(BIN)/python -m pytest -q -m slurm

# submit the workflow to SLURM (set partition/account in workflow/profiles/slurm/config.yaml)
slurm: $(STAMP)
	$(BIN)/snakemake --profile workflow/profiles/slurm --configfile $(CONFIG)

bench: $(STAMP)
	$(BIN)/python bench/bench_pod.py

clean:
	rm -rf results logs .snakemake
