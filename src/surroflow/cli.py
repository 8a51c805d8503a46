"""Command line: ``surroflow <command>`` or ``python -m surroflow <command>``.

Commands
    validate CONFIG            validate a config, print every violation with its key path
    simulators                 list the registered simulators with their parameters
    config-docs                print the reference table of every config key (config/README.md)
    provenance [RESULTS]       print the provenance of every artifact and check each file's
                               recorded config hash against the current config (stale files named;
                               stage names = rule names, see surroflow.config.STAGE_SECTIONS)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import SurroflowError, __version__


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_config
    notes: list[str] = []
    cfg = load_config(args.config, notes=notes)
    print(f"{args.config}: valid; studies: {', '.join(cfg['studies'])}")
    for note in notes:
        print(f"note: {note}")
    return 0


def _cmd_simulators(args: argparse.Namespace) -> int:
    from .simulators import available, simulator_class
    for name in available():
        try:
            cls = simulator_class(name)
        except Exception as exc:  # noqa: BLE001 - listing must not stop at one broken plugin
            print(f"{name}: unavailable ({exc})")
            continue
        print(f"{name}  [{', '.join(cls.tasks)}]  {(cls.__doc__ or '').strip().splitlines()[0] if cls.__doc__ else ''}")
    return 0


def check_provenance(results: str | Path, config_path: str | Path) -> tuple[list[dict], list[dict]]:
    """Rows ``{file, stage, study, created, git_commit, status}`` for every artifact; and the stale ones."""
    import xarray as xr

    from .config import load_config, stage_sections
    from .io import ENGINE, config_sha256

    cfg = load_config(config_path)
    rows, stale = [], []
    for path in sorted(Path(results).rglob("*.nc")):
        if path.name.startswith(".") and path.name.endswith(".tmp.nc"):
            continue   # a temporary of write_dataset (left by a killed writer), not an artifact
        try:
            with xr.open_dataset(path, engine=ENGINE) as ds:
                attrs = dict(ds.attrs)
        except Exception as exc:  # noqa: BLE001
            row = {"file": str(path), "status": f"unreadable ({type(exc).__name__})"}
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
                expected = config_sha256(stage_sections(cfg["studies"][study], str(stage), attrs.get("model_name")))
            except SurroflowError as exc:
                row["status"] = f"STALE: {exc}"
                stale.append(row)
                rows.append(row)
                continue
            if expected == attrs.get("config_sha256"):
                row["status"] = "current"
            else:
                row["status"] = "STALE: config changed since this file was made"
                stale.append(row)
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
    return 1 if stale else 0


BEGIN, END = "<!-- BEGIN KEYS (python -m surroflow config-docs --update config/README.md) -->", "<!-- END KEYS -->"


def _cmd_config_docs(args: argparse.Namespace) -> int:
    from .config import schema_markdown
    table = schema_markdown()
    if not args.update:
        print(table, end="")
        return 0
    path = Path(args.update)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SurroflowError(f"{path}: markers {BEGIN!r} and {END!r} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="surroflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"surroflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="validate a config file")
    p.add_argument("config")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("simulators", help="list registered simulators")
    p.set_defaults(func=_cmd_simulators)
    p = sub.add_parser("provenance", help="print provenance and find stale artifacts")
    p.add_argument("results", nargs="?", default="results")
    p.add_argument("--config", default="config/config.yaml")
    p.set_defaults(func=_cmd_provenance)
    p = sub.add_parser("config-docs", help="print the Markdown reference of every config key")
    p.add_argument("--update", metavar="FILE", help="rewrite the table between the markers in FILE")
    p.set_defaults(func=_cmd_config_docs)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SurroflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
