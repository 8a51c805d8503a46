"""Command line: ``surroflow <command>`` or ``python -m surroflow <command>``.

Commands
    validate CONFIG            validate a config, print every violation with its key path
                               (--import: import python: simulators too; --safe: safe mode)
    simulators [NAME...]       list the simulators (built in, registered, plugged in by entry
                               point) with their parameters, outputs and settings (--json)
    cluster                    run the dask LocalCluster of a workflow run (started by the Snakefile)
    config-docs                print the reference table of every config key (config/README.md)
    provenance [RESULTS]       print the provenance of every artifact and check each file's
                               recorded config hash against the current config (stale files named;
                               stage names = rule names, see surroflow.config.STAGE_SECTIONS)
    export STUDY NAME -o OUT   export a trained parametric surrogate to ONNX (or --format netcdf:
                               the layout of surroflow/export_reference.py); see docs/export.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from . import SurroflowError, __version__


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_config
    if args.safe:
        from .safety import set_safe_mode
        set_safe_mode(True)
    notes: list[str] = []
    cfg = load_config(args.config, notes=notes, import_modules=args.import_modules)
    print(f"{args.config}: valid{' (safe mode)' if args.safe else ''}; studies: {', '.join(cfg['studies'])}")
    for note in notes:
        print(f"note: {note}")
    return 0


def _cmd_simulators(args: argparse.Namespace) -> int:
    from .simulators import available, describe
    names = args.names or available()
    rows = [describe(name) for name in names]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for k, row in enumerate(rows):
            print(("\n" if k else "") + "\n".join(simulator_lines(row)))
    return 2 if args.names and any("error" in r for r in rows) else 0


def simulator_lines(row: dict) -> list[str]:
    """The text form of :func:`surroflow.simulators.describe`: a head line, then parameters,
    outputs, settings and notes, indented."""
    if "error" in row:
        return [f"{row['name']}: unavailable ({row['error']})"]
    lines = [f"{row['name']}  [{', '.join(row['tasks'])}]  {row['summary']}"]
    if row.get("entry_point"):
        dist = f" of {row['distribution']}" if row.get("distribution") else ""
        lines.append(f"  entry point {row['entry_point']}{dist}")
    else:
        lines.append(f"  {row['origin']}: {row['class']}")

    def table(title: str, items: list | None, cells, unknown: str = "from settings") -> None:
        if items is None:
            lines.append(f"  {title}: {unknown}")
            return
        lines.append(f"  {title}:" + ("" if items else " none"))
        body = [cells(i) for i in items]
        widths = [max(len(r[c]) for r in body) for c in range(len(body[0]))] if body else []
        for r in body:
            lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())

    table("parameters", row["parameters"],
          lambda p: [p["name"], f"[{p['low']:g}, {p['high']:g}]", p["units"], "log" if p["log_scale"] else "",
                     p["long_name"]])
    table("outputs", row["outputs"],
          lambda v: [v["name"], f"({', '.join(v['dims'])})", v["units"], v["long_name"]])

    def setting(s: dict) -> list[str]:
        kind = s["type"] or "?"
        kind += f" {s['allowed']}" if s["allowed"] and s["type"] != "choice" else ""
        kind = s["allowed"] if s["type"] == "choice" and s["allowed"] else kind
        kind += " or null" if s["nullable"] else ""
        default = ("required" if s["required"] else "default ?" if s["required"] is None
                   else f"default {json.dumps(s['default'])}")
        return [s["name"], kind, default]
    table("settings", row["settings"], setting, "not declared")
    lines += [f"  note: {n}" for n in row["notes"]]
    return lines


def misplaced(attrs: dict, path: Path, results: Path) -> list[str]:
    """Why an artifact is not where the workflow would have written it (a file copied over
    another): its study folder, split or model name differs from its path."""
    why = []
    study, stage, split = attrs.get("study"), attrs.get("stage"), attrs.get("split")
    try:
        folder = path.resolve().relative_to(results.resolve()).parts[0]
    except (ValueError, IndexError):
        folder = None
    if folder is not None and folder != study:
        why.append(f"it belongs to study {study!r} but lies in the folder of {folder!r}")
    if stage in ("make_design", "collect_batches", "import_files") and path.stem != split:
        why.append(f"it holds the {split!r} split but is named {path.name}")
    if stage == "generate_batch":
        want = f"batch_{int(attrs.get('batch', -1)):04d}"
        if path.parent.name != split or path.stem != want:
            why.append(f"it is batch {want} of the {split!r} split but is named {path.parent.name}/{path.name}")
    if stage in ("train_surrogate", "train_forecaster") and path.stem != attrs.get("model_name"):
        why.append(f"it holds model {attrs.get('model_name')!r} but is named {path.name}")
    return why


def check_provenance(results: str | Path, config_path: str | Path) -> tuple[list[dict], list[dict]]:
    """Rows ``{file, stage, study, created, git_commit, status}`` for every artifact; and the stale
    ones: made with another config, or made from an input that has changed or gone since
    (:func:`surroflow.lineage.changed_inputs`, content fingerprints)."""
    from .config import load_config, stage_sections
    from .io import config_sha256
    from .lineage import changed_inputs, read_attrs

    if not Path(results).is_dir():
        raise SurroflowError(f"{results}: no such results folder (give the folder of the config's "
                             "'results:' key)")
    cfg = load_config(config_path)
    rows, stale = [], []
    for path in sorted(Path(results).rglob("*.nc")):
        if path.name.startswith(".") and ".tmp" in path.name:
            continue   # a temporary of write_dataset (left by a killed writer), not an artifact
        try:
            attrs = read_attrs(path)
        except SurroflowError as exc:
            row = {"file": str(path), "status": f"unreadable ({exc})"}
            rows.append(row)
            stale.append(row)
            continue
        study, stage = attrs.get("study"), attrs.get("stage")
        row = {"file": str(path), "stage": stage, "study": study, "created": attrs.get("created"),
               "git_commit": attrs.get("git_commit"), "version": attrs.get("surroflow_version")}
        if study not in cfg["studies"]:
            row["status"] = f"study {study!r} not in the config"
            stale.append(row)
        else:
            try:
                # an adapt_round artifact's section is its round's (results/<study>/rounds/<r>/)
                name = path.parent.name if stage == "adapt_round" else attrs.get("model_name")
                expected = config_sha256(stage_sections(cfg["studies"][study], str(stage), name))
            except SurroflowError as exc:
                row["status"] = f"STALE: {exc}"
                stale.append(row)
                rows.append(row)
                continue
            why = [] if expected == attrs.get("config_sha256") else ["the config changed since it was made"]
            why += misplaced(attrs, path, Path(results))
            why += changed_inputs(attrs, path)
            if "lineage" not in attrs and stage is not None:
                why.append("it has no lineage record (made by an older surroflow or by hand)")
            if why:
                row["status"] = "STALE: " + "; ".join(why)
                stale.append(row)
            else:
                row["status"] = "current"
        rows.append(row)
    return rows, stale


def _cmd_provenance(args: argparse.Namespace) -> int:
    rows, stale = check_provenance(args.results, args.config)
    for r in rows:
        print(f"{r['file']}\n    stage={r.get('stage')} study={r.get('study')} created={r.get('created')} "
              f"version={r.get('version')} commit={r.get('git_commit')}\n    {r['status']}")
    print(f"\n{len(rows)} artifact(s), {len(stale)} stale or unreadable")
    for r in stale:
        print(f"  stale: {r['file']}")
    if stale:
        print("delete the stale files and rerun snakemake (it remakes exactly them and what follows)")
    return 1 if stale else 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from .distributed import serve_run_cluster
    serve_run_cluster(args.address_file, args.workers, memory_mb=args.memory_mb, parent_pid=args.parent_pid)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model
    out = args.output or f"{args.name or Path(args.source).stem}.{'onnx' if args.format == 'onnx' else 'nc'}"
    path = export_model(args.source, args.name, out, format=args.format, check=not args.no_check)
    print(f"{path}: {args.format} export of {args.source}{f' model {args.name}' if args.name else ''}")
    return 0


BEGIN, END = "<!-- BEGIN KEYS (python -m surroflow config-docs --update config/README.md) -->", "<!-- END KEYS -->"
SIM_BEGIN = "<!-- BEGIN SIMULATORS (python -m surroflow config-docs --update config/README.md) -->"
SIM_END = "<!-- END SIMULATORS -->"
#: simulators left out of the generated table (test doubles)
UNDOCUMENTED_SIMULATORS = ("flaky_burgers",)


def simulators_markdown() -> str:
    """A Markdown table of the built-in simulators: parameters (range, units, log scale),
    outputs (dims, units) and settings (type, allowed values, default), from
    :func:`surroflow.simulators.describe`, i.e. from the code."""
    from .simulators import available, describe

    def cell(items: list | None, fmt, none: str) -> str:
        return none if items is None else ("none" if not items else "<br>".join(fmt(i) for i in items))

    def setting(x: dict) -> str:
        kind = x["allowed"] if x["type"] == "choice" else " ".join(t for t in (x["type"], x["allowed"]) if t)
        kind = (kind or "?") + (" or null" if x["nullable"] else "")
        default = "required" if x["required"] else "?" if x["required"] is None else json.dumps(x["default"])
        return f"`{x['name']}` ({kind}; {default})"
    rows = ["| simulator | parameters | outputs | settings (type; default) |", "| --- | --- | --- | --- |"]
    for name in available():
        d = describe(name)
        if name in UNDOCUMENTED_SIMULATORS or d.get("origin") != "built-in":
            continue
        params = cell(d["parameters"], lambda p: f"`{p['name']}` [{p['low']:g}, {p['high']:g}] {p['units']}"
                      + (" (log)" if p["log_scale"] else ""), "from settings")
        outs = cell(d["outputs"], lambda v: f"`{v['name']}` ({', '.join(v['dims'])}) {v['units']}", "from settings")
        sets = cell(d["settings"], setting, "see its docstring")
        rows.append(f"| `{name}` | {params} | {outs} | {sets} |")
    return "\n".join(rows) + "\n"


def _replace_block(text: str, begin: str, end: str, body: str, path: Path) -> str:
    if begin not in text or end not in text:
        raise SurroflowError(f"{path}: markers {begin!r} and {end!r} not found")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def _cmd_config_docs(args: argparse.Namespace) -> int:
    from .config import schema_markdown
    table = schema_markdown()
    if not args.update:
        print(table, end="")
        return 0
    path = Path(args.update)
    text = _replace_block(path.read_text(), BEGIN, END, table, path)
    path.write_text(_replace_block(text, SIM_BEGIN, SIM_END, simulators_markdown(), path))
    return 0


def _sub(sub: Any, name: str, summary: str, description: str,
         examples: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` has a description and examples."""
    return sub.add_parser(name, help=summary, description=description,
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in examples.strip().splitlines()),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="surroflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"surroflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = _sub(sub, "validate", "validate a config file",
             "Validate CONFIG against the schema and every check that needs the code (each study's "
             "simulator\nis built with its settings); print every violation with its key path, or "
             "'valid' and the\nstudies.  Exit status 2 on an invalid config.",
             """python -m surroflow validate config/config.yaml
python -m surroflow validate my.yaml --safe        # a config you did not write
python -m surroflow validate my.yaml --import      # also import python: simulators""")
    p.add_argument("config")
    p.add_argument("--import", dest="import_modules", action="store_true",
                   help="import 'python:module:Class' simulators to check their settings (runs their code)")
    p.add_argument("--safe", action="store_true",
                   help="check the config as untrusted input (safe mode: see docs/security.md)")
    p.set_defaults(func=_cmd_validate)
    p = _sub(sub, "simulators", "list the simulators with their parameters, outputs and settings",
             "List every simulator: built in, registered, and plugged in by installed packages "
             "(entry-point\ngroup 'surroflow.simulators').  For each: its parameters (name, range, "
             "units, log scale),\noutputs (name, dims, units) and settings (name, type, default), read "
             "from the code; a part\nthe class declares only with settings (e.g. 'external', 'files') "
             "is 'from settings', and a\nnote says why.  Exit status 2 when a NAME given cannot be loaded.",
             """python -m surroflow simulators
python -m surroflow simulators burgers
python -m surroflow simulators --json > simulators.json""")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these simulators (default: all)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list, one object per simulator (the same content)")
    p.set_defaults(func=_cmd_simulators)
    p = _sub(sub, "provenance", "print provenance and find stale artifacts",
             "Print the provenance of every artifact under RESULTS (stage, study, creation time, "
             "version,\ncommit) and check it against CONFIG: an artifact made with another config, "
             "from an input\nthat changed since, or copied to another name is STALE.  Exit status 1 "
             "when any is stale.",
             """python -m surroflow provenance
python -m surroflow provenance results --config config/config.yaml""")
    p.add_argument("results", nargs="?", default="results")
    p.add_argument("--config", default="config/config.yaml")
    p.set_defaults(func=_cmd_provenance)
    p = _sub(sub, "cluster", "run a LocalCluster for a workflow run (the Snakefile starts it)",
             "Run a dask LocalCluster of WORKERS single-threaded workers until SIGTERM or until the "
             "process\nPARENT_PID is gone; its scheduler address is written to ADDRESS_FILE (JSON) "
             "once it is up.",
             """python -m surroflow cluster --address-file .snakemake/cluster.json --workers 2 --memory-mb 4000""")
    p.add_argument("--address-file", required=True)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--memory-mb", type=int, default=None)
    p.add_argument("--parent-pid", type=int, default=None)
    p.set_defaults(func=_cmd_cluster)
    p = _sub(sub, "config-docs", "print the Markdown reference of every config key",
             "Print the Markdown table of every config key (description, type, default) from the "
             "schema, or\nrewrite it in FILE between the markers\n  " + BEGIN + "\n  " + END,
             """python -m surroflow config-docs
python -m surroflow config-docs --update config/README.md""")
    p.add_argument("--update", metavar="FILE", help="rewrite the table between the markers in FILE")
    p.set_defaults(func=_cmd_config_docs)
    p = _sub(sub, "export", "export a trained parametric surrogate (ONNX; see docs/export.md)",
             "Export the trained parametric surrogate NAME of a study folder (or a model file) to "
             "ONNX, or\nwith --format netcdf to the layout of surroflow/export_reference.py; the "
             "export is run against\nthe model's own prediction unless --no-check.",
             """python -m surroflow export results/burgers rbf -o burgers_rbf.onnx
python -m surroflow export results/burgers/train/rbf.nc --format netcdf""")
    p.add_argument("source", help="study folder (results/<study>) or a model file")
    p.add_argument("name", nargs="?", default=None, help="model name (the surrogate's key in the config)")
    p.add_argument("-o", "--output", default=None, help="output file (default NAME.onnx, or NAME.nc)")
    p.add_argument("--format", choices=["onnx", "netcdf"], default="onnx")
    p.add_argument("--no-check", action="store_true",
                   help="skip running the export against the model's own prediction")
    p.set_defaults(func=_cmd_export)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SurroflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
