"""Loading and validating the workflow config against the JSON Schema in ``workflow/schemas``.

The main schema is ``config.schema.yaml``; every other ``*.schema.yaml`` beside it contributes
its top-level ``$defs`` (e.g. ``forecast.schema.yaml``), so each feature owns its part of the
schema.  Validation reports *every* violation with its key path and what is allowed, and fills
in the schema's defaults so downstream code never guesses.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

from . import SurroflowError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


def load_schema(schema_dir: str | Path | None = None) -> dict[str, Any]:
    d = Path(schema_dir) if schema_dir else SCHEMA_DIR
    main = d / "config.schema.yaml"
    if not main.exists():
        raise SurroflowError(f"{main}: schema not found")
    schema = yaml.safe_load(main.read_text())
    schema.setdefault("$defs", {})
    for extra in sorted(d.glob("*.schema.yaml")):
        if extra.name == main.name:
            continue
        part = yaml.safe_load(extra.read_text()) or {}
        for key, value in (part.get("$defs") or {}).items():
            if key in schema["$defs"]:
                raise SurroflowError(f"{extra}: $defs/{key} is already defined")
            schema["$defs"][key] = value
    return schema


def _path(err: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in err.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _explain(err: jsonschema.ValidationError) -> str:
    v = err.validator
    s = err.schema if isinstance(err.schema, dict) else {}
    where = _path(err)
    if v == "additionalProperties":
        allowed = sorted((s.get("properties") or {}).keys())
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        return f"{where}: unknown key(s) {extra}; allowed keys: {allowed}"
    if v == "enum":
        return f"{where}: {err.instance!r} is not allowed; allowed: {s.get('enum')}"
    if v == "type":
        return f"{where}: {err.instance!r} has the wrong type; expected {s.get('type')}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {err.instance!r} violates {v} {s.get(v)}"
    if v == "required":
        return f"{where}: {err.message}"
    return f"{where}: {err.message}"


def _leaf_errors(errors: Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    out = []
    for e in errors:
        if e.context:
            # oneOf/anyOf: report the branch that got furthest
            best = jsonschema.exceptions.best_match(e.context)
            out.append(best if best is not None else e)
        else:
            out.append(e)
    return out


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**root["$defs"][ref.split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def fill_defaults(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """Fill ``default`` values of object properties, recursively (following local $refs)."""
    schema = _resolve(schema, root)
    if isinstance(instance, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            sub = _resolve(sub, root) if isinstance(sub, dict) else sub
            if key not in instance and isinstance(sub, dict) and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance and isinstance(sub, dict):
                instance[key] = fill_defaults(instance[key], sub, root)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in instance:
                if key not in props:
                    instance[key] = fill_defaults(instance[key], addl, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [fill_defaults(x, schema["items"], root) for x in instance]
    return instance


def validate_config(config: Mapping[str, Any], schema_dir: str | Path | None = None,
                    source: str = "config") -> dict[str, Any]:
    """Validate ``config``; return a copy with defaults filled.  Raises with *all* violations."""
    schema = load_schema(schema_dir)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(_leaf_errors(validator.iter_errors(config)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_explain(e)}" for e in errors)
        raise SurroflowError(f"{source}: {len(errors)} invalid setting(s):\n{lines}")
    cfg = fill_defaults(copy.deepcopy(dict(config)), schema, schema)
    _semantic_checks(cfg, source)
    return cfg


def _semantic_checks(cfg: Mapping[str, Any], source: str) -> None:
    """Checks JSON Schema cannot express: simulator names and parameter names."""
    from .simulators import available, simulator_class
    problems = []
    for study, sc in (cfg.get("studies") or {}).items():
        sim = sc["simulator"]["name"]
        try:
            cls = simulator_class(sim)
        except (KeyError, ImportError, TypeError) as exc:
            problems.append(f"studies.{study}.simulator.name: {exc}" if not isinstance(exc, KeyError)
                            else f"studies.{study}.simulator.name: {sim!r} is not allowed; allowed: {available()}")
            continue
        task = sc.get("task", "parametric")
        if task not in cls.tasks:
            problems.append(f"studies.{study}.task: simulator {sim!r} supports {list(cls.tasks)}, not {task!r}")
    if problems:
        raise SurroflowError(f"{source}: {len(problems)} invalid setting(s):\n" +
                             "\n".join(f"  - {p}" for p in problems))


def load_config(path: str | Path, schema_dir: str | Path | None = None) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SurroflowError(f"{path}: cannot read YAML ({exc})") from None
    return validate_config(raw or {}, schema_dir, source=str(path))


def study_section(cfg: Mapping[str, Any], study: str) -> dict[str, Any]:
    try:
        return dict(cfg["studies"][study])
    except KeyError:
        raise SurroflowError(f"studies.{study}: no such study; defined: {sorted(cfg.get('studies', {}))}") from None


#: which parts of a study each stage depends on: its artifacts' ``config_sha256`` covers exactly
#: these, so a change elsewhere (say, a plot setting) neither reruns nor marks them stale.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "design": ("task", "simulator", "design"),
    "generate_batch": ("task", "simulator", "design"),
    "generate": ("task", "simulator", "design"),
    "reduce": ("task", "simulator", "design", "reduction"),
    "train": ("task", "simulator", "design", "reduction"),
    "evaluate": ("task", "simulator", "design", "reduction", "surrogates", "evaluation"),
    "forecast_train": ("task", "simulator", "design", "forecast"),
    "forecast_evaluate": ("task", "simulator", "design", "forecast"),
}


def stage_sections(study: Mapping[str, Any], stage: str, surrogate: str | None = None) -> dict[str, Any]:
    """The subset of a study's config that ``stage`` depends on (plus one surrogate for train)."""
    keys = STAGE_SECTIONS.get(stage, tuple(study))
    out = {k: study.get(k) for k in keys}
    if stage in ("design", "generate_batch") and isinstance(out.get("simulator"), Mapping):
        # the failure threshold is checked when batches are collected: changing it reruns no simulation
        out["simulator"] = {k: v for k, v in out["simulator"].items() if k != "max_failure_fraction"}
    if stage == "train" and surrogate is not None:
        out["surrogate"] = {surrogate: study.get("surrogates", {}).get(surrogate)}
    return out


def schema_markdown(schema_dir: str | Path | None = None) -> str:
    """A Markdown reference of every config key (path, type, default, allowed values, description)."""
    schema = load_schema(schema_dir)
    rows: list[tuple[str, str, str, str]] = []

    def fmt_type(s: Mapping[str, Any]) -> str:
        if "enum" in s:
            return " \\| ".join(f"`{v}`" for v in s["enum"])
        t = s.get("type", "")
        t = " or ".join(t) if isinstance(t, list) else str(t)
        bounds = [f"{k} {s[k]}" for k in ("minimum", "exclusiveMinimum", "maximum") if k in s]
        return t + (f" ({', '.join(bounds)})" if bounds else "")

    def walk(s: Mapping[str, Any], path: str, seen: tuple[str, ...]) -> None:
        ref = s.get("$ref")
        if isinstance(ref, str):
            name = ref.split("/")[-1]
            if name in seen:
                return
            s = _resolve(s, schema)
            seen = (*seen, name)
        if path:
            default = s.get("default", "—(required)" if False else "")
            d = "" if "default" not in s else f"`{json.dumps(default)}`"
            rows.append((path, fmt_type(s), d, " ".join(str(s.get("description", "")).split())))
        for key, sub in (s.get("properties") or {}).items():
            walk(sub, f"{path}.{key}" if path else key, seen)
        addl = s.get("additionalProperties")
        if isinstance(addl, dict) and addl:
            walk(addl, f"{path}.<name>", seen)

    walk(schema, "", ())
    lines = ["| key | type / allowed | default | description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{p}` | {t} | {d} | {desc} |" for p, t, d, desc in rows]
    return "\n".join(lines) + "\n"
