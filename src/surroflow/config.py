"""Loading and validating the workflow config against the JSON Schema (package data
``surroflow/schemas/*.schema.yaml``, so an installed package validates from any folder).

The main schema is ``config.schema.yaml``; every other ``*.schema.yaml`` beside it contributes
its top-level ``$defs`` (e.g. ``forecast.schema.yaml``), so each feature owns its part of the
schema.  Validation reports *every* violation with its key path and what is allowed, fills in
the schema's defaults (the only place defaults live: code never writes ``cfg.get(key,
default)``), then runs the checks a schema cannot express (simulator names, tasks and
settings, parameter ranges, estimator kinds and hyperparameter names and values, reduction
variables, a surrogate per parametric study, the number of generation jobs, ``files`` tables)
before any job is built -- the same checks ``python -m surroflow validate`` and the Snakefile
run.  :func:`load_yaml_strict` reads YAML refusing duplicate keys (and so duplicate studies).

:data:`STAGE_SECTIONS` says which config sections each stage (= rule name) depends on;
:func:`stage_sections` cuts them out of a study.
"""
from __future__ import annotations

import copy
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

from . import SurroflowError

log = logging.getLogger("surroflow.config")

#: the schema files, shipped as package data
SCHEMA_DIR = resources.files("surroflow") / "schemas"


def load_schema(schema_dir: str | Path | None = None) -> dict[str, Any]:
    d = Path(schema_dir) if schema_dir else SCHEMA_DIR
    main = d / "config.schema.yaml"
    if not main.is_file():
        raise SurroflowError(f"{main}: schema not found")
    schema = yaml.safe_load(main.read_text())
    schema.setdefault("$defs", {})
    for extra in sorted(d.iterdir(), key=lambda f: f.name):
        if extra.name == main.name or not extra.name.endswith(".schema.yaml"):
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


#: the most generation jobs (batches) one split of a study may have: more makes the DAG itself
#: (``snakemake -n``) slow and memory-hungry; a bigger ``design.batch_size`` is the cure
MAX_BATCHES = 10_000


class StrictLoader(yaml.SafeLoader):
    """A :class:`yaml.SafeLoader` refusing duplicate mapping keys (PyYAML keeps the last one
    silently, so a study or a setting written twice would vanish without a word)."""


def _strict_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue              # SafeLoader's own error comes below
        line = key_node.start_mark.line + 1
        if key in seen:
            raise SurroflowError(f"{key_node.start_mark.name}:{line}: duplicate key {key!r} "
                                 f"(also on line {seen[key]})")
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def load_yaml_strict(path: str | Path) -> Any:
    """The YAML document of ``path`` (safe loading) with duplicate keys refused:
    ``<file>:<line>: duplicate key 'x' (also on line N)``; unreadable or invalid YAML is a
    :class:`SurroflowError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SurroflowError(f"{path}: cannot read YAML ({exc.strerror or exc})") from None
    try:
        loader = StrictLoader(text)
        loader.name = str(path)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SurroflowError(f"{path}: cannot read YAML ({' '.join(str(exc).split())})") from None


def validate_config(config: Mapping[str, Any], schema_dir: str | Path | None = None,
                    source: str = "config", notes: list[str] | None = None,
                    import_modules: bool = True) -> dict[str, Any]:
    """Validate ``config``; return a copy with defaults filled.  Raises with *all* violations.

    ``notes`` (a list) receives what is not an error but worth saying, e.g. a study whose
    simulator cannot run on this machine (it is skipped by the workflow).  With
    ``import_modules=False`` a ``python:module:Class`` simulator is not imported (importing runs
    its code): its settings, parameters and outputs are not checked, and a note says so.
    """
    schema = load_schema(schema_dir)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(_leaf_errors(validator.iter_errors(config)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_explain(e)}" for e in errors)
        raise SurroflowError(f"{source}: {len(errors)} invalid setting(s):\n{lines}")
    cfg = copy.deepcopy(dict(config))
    problems: list[str] = add_linear_baselines(cfg)
    cfg = fill_defaults(cfg, schema, schema)
    by_folded: dict[str, str] = {}
    for study in cfg["studies"]:
        other = by_folded.setdefault(study.lower(), study)
        if other != study:
            problems.append(f"studies.{study}: the name differs from study {other!r} only in case "
                            "(their result folders would collide on a case-insensitive file system)")
    from .safety import config_problems
    # safe mode first: a study with anything safe mode refuses is not checked further (checking
    # builds its simulator, which would import or look up what was refused, and report the same
    # refusal a second time); each refusal is reported once, by config_problems
    safe = config_problems(cfg)
    for study, sc in cfg["studies"].items():
        if any(p.startswith(f"studies.{study}.") for p in safe):
            continue
        problems += check_study(study, sc, notes if notes is not None else [], import_modules=import_modules)
    problems += safe
    if problems:
        raise SurroflowError(f"{source}: {len(problems)} invalid setting(s):\n" +
                             "\n".join(f"  - {p}" for p in problems))
    return cfg


def _prefixed(study: str, exc: Exception) -> str:
    text = str(exc)
    return f"studies.{study}.{text}" if text.startswith(("simulator.", "design.")) else f"studies.{study}: {text}"


def _check_design_size(study: str, design: Mapping[str, Any]) -> list[str]:
    """At most :data:`MAX_BATCHES` generation jobs per split (the schema bounds the counts)."""
    out = []
    from .snapshots import SPLITS
    for split in SPLITS:
        n, size = int(design.get(f"n_{split}", 0)), int(design["batch_size"])
        jobs = -(-n // size)
        if jobs > MAX_BATCHES:
            out.append(f"studies.{study}.design.n_{split}: {n} samples in batches of {size} make {jobs} "
                       f"generation jobs, more than {MAX_BATCHES}; set studies.{study}.design.batch_size "
                       f">= {-(-n // MAX_BATCHES)}")
    return out


def check_study(study: str, sc: Mapping[str, Any], notes: list[str], import_modules: bool = True) -> list[str]:
    """The checks JSON Schema cannot express, for one (defaults-filled) study: every problem as
    one line naming its key.  Simulator unavailable here (e.g. no ``ccx``): a note, not an error
    (its settings are still checked: simulators check them before looking for their program).
    """
    from .design import check_ranges
    from .simulators import SimulatorUnavailable, available, simulator_class
    from .surrogates.registry import estimator_param_problems

    problems: list[str] = _check_design_size(study, sc["design"])
    if sc["task"] == "forecast" and sc["design"].get("n_calibration", 0):
        problems.append(f"studies.{study}.design.n_calibration: a forecast study has no conformal band to "
                        "calibrate; remove the key (or set it to 0)")
    problems += _check_estimators(study, sc, estimator_param_problems)
    problems += _parametric_only(study, sc)
    problems += _check_adaptive(study, sc)
    name = sc["simulator"]["name"]
    if name.startswith("python:") and not import_modules:
        notes.append(f"studies.{study}.simulator.name: {name!r} was not imported (importing runs its "
                     "code; `validate --import` does), so its settings, parameters and outputs were "
                     "not checked")
        return problems
    reader = (sc["simulator"].get("settings") or {}).get("reader")
    if isinstance(reader, str) and reader.startswith("python:") and not import_modules:
        notes.append(f"studies.{study}.simulator.settings.reader: {reader!r} was not imported (importing "
                     "runs its code; `validate --import` does), so the simulator's settings, parameters "
                     "and outputs were not checked")
        return problems
    try:
        cls = simulator_class(name)
    except KeyError:
        return problems + [f"studies.{study}.simulator.name: {name!r} is not allowed; allowed: {available()}, "
                           "'python:package.module:Class' (a Simulator subclass on PYTHONPATH), or a name an "
                           "installed package registers in the entry-point group 'surroflow.simulators'"]
    except SurroflowError as exc:
        text = str(exc)
        return problems + [text if text.startswith("studies.") else f"studies.{study}.simulator.name: {text}"]
    except (ImportError, AttributeError, TypeError) as exc:
        return problems + [f"studies.{study}.simulator.name: {name!r} cannot be loaded ({exc})"]
    if sc["task"] not in cls.tasks:
        problems.append(f"studies.{study}.task: simulator {name!r} supports {list(cls.tasks)}, not {sc['task']!r}")
    members = int(sc["design"].get("members", 1))
    if members > 1 and not getattr(cls, "stochastic", False):
        problems.append(f"studies.{study}.design.members: {members} realisations per point need a stochastic "
                        f"simulator; {name!r} is deterministic (its members would be identical); use members: 1")
    elif members > 1 and sc["task"] != "parametric":
        problems.append(f"studies.{study}.design.members: realisations per point are for parametric studies; "
                        f"this study's task is {sc['task']!r}")
    sim = None
    try:
        sim = cls(**sc["simulator"]["settings"])
        if name == "files":
            sim.check(sc["design"])
    except SimulatorUnavailable as exc:
        notes.append(f"studies.{study}: skipped on this machine: {exc}")
        return problems
    except SurroflowError as exc:
        return problems + [_prefixed(study, exc)]
    except (TypeError, ValueError, AttributeError) as exc:   # e.g. an unexpected keyword of a user's
        return problems + [f"studies.{study}.simulator.settings: {exc}"]   # class, or a wrong type
    try:
        declared = list(sim.parameters())
        outputs = [v.name for v in sim.outputs()]
    except SurroflowError as exc:
        return problems + [_prefixed(study, exc)]
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return problems + [f"studies.{study}.simulator: simulator {name!r} cannot declare its parameters "
                           f"and outputs with these settings ({exc})"]
    problems += [f"studies.{study}.{p}" for p in check_ranges(declared, sc["simulator"]["parameters"])]
    chosen = list(sc["reduction"]["variables"])
    unknown = sorted(set(chosen) - set(outputs))
    if unknown:
        problems.append(f"studies.{study}.reduction.variables: {unknown} are not outputs of simulator "
                        f"{name!r}; allowed: {outputs}")
    elif len(set(chosen)) != len(chosen):
        problems.append(f"studies.{study}.reduction.variables: {chosen} names a variable twice")
    if sc.get("uq") is not None and sc["task"] == "parametric":
        from .design import resolve_parameters
        from .uq import config_problems as uq_problems
        try:
            names = [p.name for p in resolve_parameters(declared, sc["simulator"]["parameters"])]
        except SurroflowError:
            names = None        # bad ranges: reported above
        if names is not None:
            problems += uq_problems(study, sc, names, {v.name: v.dims for v in sim.outputs()}, cls.time_dim)
    if sc["task"] == "model_error":
        problems += _check_model_error(study, sc, cls)
    elif sc.get("model_error") is not None:
        problems.append(f"studies.{study}.model_error: only a study with task model_error takes this section")
    variable = sc["forecast"].get("variable") if sc["task"] == "forecast" else None
    if variable is not None and variable not in outputs:
        problems.append(f"studies.{study}.forecast.variable: {variable!r} is not an output of simulator "
                        f"{name!r}; allowed: {outputs}")
    problems += _online_problems(study, sc)
    if sc["task"] in ("forecast", "model_error") and not problems:
        problems += _reference_accuracy(study, sc, sim)
    return problems


def _online_problems(study: str, sc: Mapping[str, Any]) -> list[str]:
    """``forecast.online`` names a model of the study that can learn online."""
    online = (sc.get("forecast") or {}).get("online")
    if online is None:
        return []
    where = f"studies.{study}.forecast.online"
    if sc["task"] != "forecast":
        return [f"{where}: only a study with task forecast evaluates online learning"]
    models = sc["forecast"].get("models") or {}
    m = models.get(online["model"])
    if m is None:
        return [f"{where}.model: {online['model']!r} is not a model of forecast.models; defined: {sorted(models)}"]
    from .surrogates.registry import estimator_class
    if not callable(getattr(estimator_class(m["kind"], "forecaster"), "partial_fit", None)):
        return [f"{where}.model: model {online['model']!r} is of kind {m['kind']!r}, which cannot learn online; "
                "use a model of kind 'rff'"]
    if m.get("state", "inherit") == "pod" or (m.get("state", "inherit") == "inherit" and sc["forecast"]["state"] == "pod"):
        return [f"{where}.model: model {online['model']!r} steps the POD state; online learning runs on the full state"]
    return []


def _reference_accuracy(study: str, sc: Mapping[str, Any], sim: Any) -> list[str]:
    """A chaotic simulator whose Lyapunov exponent is known without computing it (a setting or a
    published value) has its reference trajectories checked over the forecast horizon here,
    before any job; otherwise the forecast evaluation checks them with the exponent of the data."""
    from .evaluation.forecast_metrics import known_lyapunov_time, reference_problem
    lt = known_lyapunov_time(sim)
    if lt is None or not hasattr(sim, "integrate"):
        return []
    fc = sc["forecast"]
    found = reference_problem(sim, lyapunov_time=lt, horizon_lyapunov=fc["horizon_lyapunov"],
                              vpt_threshold=fc["vpt_threshold"], tolerance=fc["reference_tolerance"],
                              where=f"studies.{study}")
    return [found] if found else []


def _check_model_error(study: str, sc: Mapping[str, Any], cls: Any) -> list[str]:
    """The twin experiment must be well posed: an imperfect model that is the simulator with
    other (valid) settings, whose equations both state term by term; the truth fully and
    exactly observed by the simulator (the filter's observations are drawn by the study)."""
    where = f"studies.{study}.model_error"
    me = sc.get("model_error")
    if me is None:
        return [f"{where}: a model_error study needs this section, e.g. model_error: {{model: {{c_xx: 0.5}}}} "
                "(the imperfect model: simulator settings that differ from the truth)"]
    settings = dict(sc["simulator"]["settings"])
    observing = [k for k in ("observation_noise", "observe_every", "observe_random") if k in settings]
    if observing:
        return [f"studies.{study}.simulator.settings: {observing} are not allowed in a model_error study: the "
                "truth is kept exact and whole, and the filter's observations are set in "
                "model_error.observation (every, noise, seed)"]
    try:
        truth = cls(**settings)
        model = cls(**{**settings, **me["model"]})
    except SurroflowError as exc:
        return [f"{where}.model: {exc}"]
    if model.settings == truth.settings:
        return [f"{where}.model: {me['model']} leaves the truth unchanged; change a coefficient (e.g. c_xx: 0.5)"]
    if truth.equation_terms() is None:
        return [f"studies.{study}.simulator.name: {sc['simulator']['name']!r} does not state its equations term "
                "by term, so its model error cannot be discovered"]
    problems = []
    if me["observation"]["every"] > truth.dim:
        problems.append(f"{where}.observation.every: expected 1..{truth.dim} (the state has {truth.dim} points), "
                        f"got {me['observation']['every']}")
    return problems


#: sections only a parametric study takes (a dotted path, what the section is for)
PARAMETRIC_SECTIONS = (("uq", "uncertainty propagation"), ("design.adaptive", "adaptive sampling"))


def _parametric_only(study: str, sc: Mapping[str, Any]) -> list[str]:
    """One line per section of :data:`PARAMETRIC_SECTIONS` that a study of another task has."""
    if sc["task"] == "parametric":
        return []
    out = []
    for path, what in PARAMETRIC_SECTIONS:
        node: Any = sc
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            out.append(f"studies.{study}.{path}: {what} needs a parametric study (task is {sc['task']!r}); "
                       "remove the section")
    return out


def _check_adaptive(study: str, sc: dict[str, Any]) -> list[str]:
    """``design.adaptive`` against the rest of the study; fills ``budget`` (null: ``n_train``)."""
    d = sc["design"]
    ad = d.get("adaptive")
    if ad is None:
        return []
    where = f"studies.{study}.design.adaptive"
    if sc["task"] != "parametric":
        return []           # _parametric_only says why
    problems = []
    n_train = int(d["n_train"])
    if ad["budget"] is None:
        ad["budget"] = n_train
    surrogates = sc.get("surrogates") or {}
    if ad["surrogate"] not in surrogates:
        problems.append(f"{where}.surrogate: {ad['surrogate']!r} is not a surrogate of the study; defined: "
                        f"{sorted(surrogates)}")
    else:
        sur = surrogates[ad["surrogate"]]
        if sur["basis"] not in ("global", "local"):
            problems.append(f"{where}.surrogate: {ad['surrogate']!r} has basis {sur['basis']!r}; the rounds fit "
                            "bases of their own samples: use a surrogate with basis global or local")
        for key in ("indicator", "estimate"):
            if ad[key] != "gp_std":
                continue
            if sur["kind"] != "gaussian_process":
                problems.append(f"{where}.{key}: gp_std needs a surrogate of kind gaussian_process (a predictive "
                                f"std); {ad['surrogate']!r} is {sur['kind']!r}")
            elif sur["basis"] != "global":
                problems.append(f"{where}.{key}: gp_std needs global bases (one GP over the whole parameter box); "
                                f"{ad['surrogate']!r} has basis {sur['basis']!r}")
        if ad["indicator"] == "local_residual" and sur["basis"] != "local":
            problems.append(f"{where}.indicator: local_residual scores the local basis a candidate is given; "
                            f"{ad['surrogate']!r} has basis {sur['basis']!r}: use a surrogate with basis local")
    if ad["budget"] > n_train:
        problems.append(f"{where}.budget: {ad['budget']} is more than design.n_train ({n_train}): the one-shot "
                        "baseline of the same budget is the train design, so budget <= n_train")
    if ad["initial"] >= ad["budget"]:
        problems.append(f"{where}.initial: {ad['initial']} leaves no run of the budget ({ad['budget']}) to the "
                        "rounds; initial < budget")
    if d["method"] != "sobol" or d["split"] != "separate":
        problems.append(f"{where}: needs design.method sobol and design.split separate (got {d['method']}, "
                        f"{d['split']}): the one-shot curve trains on the first n points of the train design, "
                        "a Sobol design of n points only for a Sobol sequence")
    if int(d.get("members", 1)) > 1:
        problems.append(f"{where}: not with design.members > 1 (a round adds parameter points, not members)")
    from .adaptive.indicators import INDICATORS
    try:
        INDICATORS[ad["indicator"]](**ad["indicator_params"])
    except SurroflowError as exc:
        problems.append(f"{where}.indicator_params: {exc}")
    return problems


def _check_estimators(study: str, sc: Mapping[str, Any], problems_of: Any) -> list[str]:
    """Kinds, hyperparameter names and values of the study's surrogates (or forecast models)."""
    problems: list[str] = []
    if sc["task"] == "parametric":
        if not sc["surrogates"]:
            problems.append(f"studies.{study}.surrogates: a parametric study needs at least one surrogate "
                            "(e.g. surrogates: {rbf: {kind: rbf}})")
        for sname, s in sc["surrogates"].items():
            problems += problems_of(s["kind"], s["params"], "surrogate", f"studies.{study}.surrogates.{sname}")
            if s["basis"] == "local" and s["formulation"] == "trajectory":
                problems.append(f"studies.{study}.surrogates.{sname}.formulation: 'trajectory' needs a global "
                                "basis (local bases choose a cluster per snapshot); use auto or pointwise")
            fno = s["kind"] == "mlp" and s["params"].get("architecture") == "fno"
            if fno and s["basis"] != "none":
                problems.append(f"studies.{study}.surrogates.{sname}.basis: a Fourier neural operator (architecture "
                                f"fno) maps the inputs to the field on its grid; set basis: none (got {s['basis']!r})")
            if fno and s["formulation"] == "trajectory":
                problems.append(f"studies.{study}.surrogates.{sname}.formulation: architecture fno predicts one "
                                "field per (parameters, time) row; use auto or pointwise")
            if s["basis"] == "local" and sc["reduction"].get("clustering") is None:
                problems.append(f"studies.{study}.surrogates.{sname}.basis: 'local' needs "
                                "reduction.clustering (a mapping, e.g. {n_clusters: auto})")
    else:
        # an empty forecast.models is fine: the persistence and climatology baselines are
        # always trained and evaluated (config.forecast_models)
        for mname, m in sc["forecast"]["models"].items():
            where = f"studies.{study}.forecast.models.{mname}"
            found = problems_of(m["kind"], m["params"], "forecaster", where)
            problems += found
            inner = m["params"].get("inner_kind") if m["kind"] == "reduced" else None
            if not found and isinstance(inner, str):
                problems += problems_of(inner, m["params"].get("inner_params") or {}, "forecaster",
                                        f"{where}.params.inner_params")
    return problems


def load_config(path: str | Path, schema_dir: str | Path | None = None,
                notes: list[str] | None = None, import_modules: bool = True) -> dict[str, Any]:
    """Read ``path`` (duplicate keys refused, :func:`load_yaml_strict`) and validate it."""
    raw = load_yaml_strict(path)
    return validate_config(raw or {}, schema_dir, source=str(path), notes=notes,
                           import_modules=import_modules)


def study_section(cfg: Mapping[str, Any], study: str) -> dict[str, Any]:
    try:
        return dict(cfg["studies"][study])
    except KeyError:
        raise SurroflowError(f"studies.{study}: no such study; defined: {sorted(cfg['studies'])}") from None


_GEN = ("task", "simulator", "design")
#: which parts of a study each stage (= rule name) depends on: its artifacts' ``config_sha256``
#: covers exactly these, so a change elsewhere (say, a plot setting) neither reruns nor marks
#: them stale.  See :func:`stage_sections` for the per-model entries.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "make_design": _GEN,
    "generate_batch": _GEN,
    "collect_batches": _GEN,
    "import_files": _GEN,
    "fit_pod": (*_GEN, "reduction"),
    "fit_local_pod": (*_GEN, "reduction"),
    "plot_projection_study": (*_GEN, "reduction"),
    "train_surrogate": (*_GEN, "reduction"),
    "evaluate_surrogates": (*_GEN, "reduction", "surrogates", "evaluation"),
    "train_forecaster": (*_GEN, "forecast"),
    "write_equations": (*_GEN, "forecast"),
    "evaluate_forecast": (*_GEN, "forecast"),
    "evaluate_online": (*_GEN, "forecast"),
    "propagate_uq": (*_GEN, "uq"),
    # adaptive sampling (design.adaptive, handed to these stages as `adaptive`): the rounds and
    # their evaluation beside the one-shot design
    "generate_round": _GEN,
    "adapt_round": (*_GEN, "reduction", "surrogates"),
    "evaluate_adaptive": (*_GEN, "reduction", "surrogates"),
    # model-error discovery (task model_error): filter, regression, scoring of the three models
    "discover_model_error": (*_GEN, "model_error"),
    "evaluate_model_error": (*_GEN, "model_error", "forecast"),
    # the report's front page: per study, what it is (its tables and figures are its inputs)
    "overview": ("task", "description"),
}
#: the stages that read ``simulator.max_failure_fraction`` (the others get the simulator
#: section without it: changing the threshold reruns no simulation)
FAILURE_FRACTION_STAGES = ("collect_batches", "import_files", "adapt_round")
#: the stages of adaptive sampling: they get ``design.adaptive`` as the section ``adaptive``;
#: every other stage gets the design without it (the one-shot runs do not depend on it)
ADAPTIVE_STAGES = ("generate_round", "adapt_round", "evaluate_adaptive")


def add_linear_baselines(cfg: dict[str, Any]) -> list[str]:
    """Put the linear baseline first in every parametric study's surrogates (in place): ridge
    regression of the POD coefficients on the inputs, ``{kind: linear, params: {degree: 1}}``.
    A surrogate the config names ``linear`` (kind ``linear``, degree 1; e.g. its own ``alpha``)
    is kept as the baseline; another kind or degree under that name is refused.  Returns the problems found."""
    from .surrogates.registry import LINEAR_BASELINE
    problems = []
    for study, sc in cfg.get("studies", {}).items():
        if not isinstance(sc, dict) or sc.get("task", "parametric") != "parametric":
            continue
        surrogates = sc.get("surrogates") or {}
        mine = surrogates.get(LINEAR_BASELINE)
        if mine is not None and (mine.get("kind") != "linear"
                                 or (mine.get("params") or {}).get("degree", 1) != 1):
            got = (f"kind {mine.get('kind')!r}" if mine.get("kind") != "linear"
                   else f"degree {(mine.get('params') or {}).get('degree')!r}")
            problems.append(f"studies.{study}.surrogates.{LINEAR_BASELINE}: the name {LINEAR_BASELINE!r} is the "
                            f"linear baseline of every parametric study (kind linear, degree 1), not {got}; "
                            f"give this surrogate another name (e.g. 'poly')")
            continue
        if surrogates:            # an empty section is reported by the estimator checks
            sc["surrogates"] = {LINEAR_BASELINE: mine or {"kind": "linear", "params": {"degree": 1}},
                                **{k: v for k, v in surrogates.items() if k != LINEAR_BASELINE}}
    return problems


def forecast_models(study: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {kind, params, state} of a (validated) forecast study: the baselines (always
    trained, full state) first, then the configured models."""
    from .forecast import BASELINES
    models = {b: {"kind": b, "params": {}, "state": "full"} for b in BASELINES}
    for name, m in study["forecast"]["models"].items():
        models[name] = {"kind": m["kind"], "params": dict(m["params"]), "state": m["state"]}
    return models


def stage_sections(study: Mapping[str, Any], stage: str, name: str | None = None) -> dict[str, Any]:
    """The subset of a (validated) study's config that ``stage`` depends on.

    ``name`` is the one model a training stage fits (for ``adapt_round``: the round, whose
    ``adaptive`` is :func:`surroflow.adaptive.schedule.round_view`; ``generate_round`` runs the
    points it is given and gets no ``adaptive`` at all): ``train_surrogate`` adds
    ``surrogate: {name: its section}``; ``train_forecaster`` gets the forecast section without
    ``models`` plus ``model: {name: {kind, params, state}}`` (baselines included), so changing
    one model retrains only that one; ``write_equations`` gets the same.  ``propagate_uq`` adds ``surrogates: {uq.surrogate: its
    section}`` (only the surrogate it propagates through).
    """
    if stage not in STAGE_SECTIONS:
        raise SurroflowError(f"stage {stage!r} is unknown; stages: {list(STAGE_SECTIONS)}")
    out = {k: copy.deepcopy(study.get(k, "")) for k in STAGE_SECTIONS[stage]}
    if stage not in FAILURE_FRACTION_STAGES and "simulator" in out:
        out["simulator"].pop("max_failure_fraction", None)
    if isinstance(out.get("design"), dict):
        adaptive = out["design"].pop("adaptive", None)
        if stage in ADAPTIVE_STAGES and adaptive is None:
            raise SurroflowError(f"design.adaptive: the study has none ({stage} needs it)")
        if stage == "adapt_round":
            # the round's own view: budget and max_rounds only as far as they change this round
            from .adaptive.schedule import round_view
            if name is None or not str(name).isdigit():
                raise SurroflowError(f"stage adapt_round: {name!r} is not a round (the round index: 0, 1, ...)")
            out["adaptive"] = round_view(adaptive, int(name))
        elif stage == "evaluate_adaptive":
            out["adaptive"] = adaptive
        if stage in ("adapt_round", "evaluate_adaptive"):
            out["surrogates"] = {adaptive["surrogate"]: copy.deepcopy(study["surrogates"][adaptive["surrogate"]])}
    if stage == "train_surrogate":
        if name not in study["surrogates"]:
            raise SurroflowError(f"surrogates: no surrogate {name!r}; defined: {sorted(study['surrogates'])}")
        out["surrogate"] = {name: copy.deepcopy(study["surrogates"][name])}
    elif stage in ("train_forecaster", "write_equations"):
        models = forecast_models(study)
        if name not in models:
            raise SurroflowError(f"forecast.models: no model {name!r}; defined: {sorted(models)}")
        out["forecast"].pop("models", None)
        out["model"] = {name: models[name]}
    elif stage == "evaluate_model_error":     # scored like a forecast study; its models unused
        out["forecast"].pop("models", None)
    elif stage == "propagate_uq":
        uq = study.get("uq")
        if uq is None:
            raise SurroflowError("uq: the study has no uq section (propagate_uq needs one)")
        if uq["surrogate"] not in study["surrogates"]:
            raise SurroflowError(f"uq.surrogate: no surrogate {uq['surrogate']!r}; defined: {sorted(study['surrogates'])}")
        out["surrogates"] = {uq["surrogate"]: copy.deepcopy(study["surrogates"][uq["surrogate"]])}
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
            d = "" if "default" not in s else f"`{json.dumps(s['default'])}`"
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
