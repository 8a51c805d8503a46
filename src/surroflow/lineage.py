"""Lineage: what every artifact was made from, and the checks that refuse a wrong input.

Each artifact records, beside the config hash of :func:`surroflow.io.provenance`:

``artifact_id``
    a random id given at write time: a rewritten file gets a new one, a copied file keeps the
    id of the file it was copied from;
``lineage``
    JSON ``{"inputs": {role: [{"file", "fingerprint", "artifact_id", "stage", "split"}, ...]}}``:
    every input file it was made from, its path relative to the artifact's folder and a content
    fingerprint (:func:`fingerprint`);
``generation_sha256``
    the hash of the study's ``task``, ``simulator`` and ``design`` settings: every artifact of a
    study is made from data generated with these;
``design_sha256``
    the content hash of the train and test designs the data came from (one value for both
    splits of a study).

Stages check what they read (:func:`check_inputs`): an input made for another study, another
split, other generation settings or another design, or an input whose own recorded inputs
have changed since it was made, stops the stage with one sentence naming both files.
``python -m surroflow provenance`` walks a results folder with :func:`changed_inputs` and names
every artifact whose inputs changed after it was made.

This module sits at the bottom of the package (beside :mod:`surroflow.io`): it knows file
attributes, not stages.  Which input of which stage must be what is declared by the stages.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import SurroflowError

ARTIFACT_ID = "artifact_id"
LINEAGE = "lineage"
GENERATION = "generation_sha256"
DESIGN = "design_sha256"

#: files up to this size are hashed whole; larger ones by size and evenly spaced blocks
FULL_HASH_BYTES = 64 * 2**20
SAMPLE_BLOCKS = 64
BLOCK_BYTES = 2**20


# --------------------------------------------------------------------------- fingerprints
def fingerprint(path: str | os.PathLike[str]) -> str:
    """A content fingerprint of ``path``: ``sha256:<hex>`` of the whole file up to
    :data:`FULL_HASH_BYTES`; above that ``sampled:<size>:<hex>``, the SHA-256 of the size, the
    first and last MiB and :data:`SAMPLE_BLOCKS` evenly spaced MiB blocks (HDF5 puts its header
    and chunk index at the ends, so a changed dataset changes the sample)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= FULL_HASH_BYTES:
            for block in iter(lambda: fh.read(BLOCK_BYTES), b""):
                h.update(block)
            return f"sha256:{h.hexdigest()}"
        h.update(str(size).encode())
        step = (size - BLOCK_BYTES) / (SAMPLE_BLOCKS - 1)
        for k in range(SAMPLE_BLOCKS):
            fh.seek(int(k * step))
            h.update(fh.read(BLOCK_BYTES))
    return f"sampled:{size}:{h.hexdigest()}"


def new_artifact_id() -> str:
    return uuid.uuid4().hex


def content_sha256(*arrays: Any, extra: str = "") -> str:
    """SHA-256 of numpy arrays (values and shapes) and a string: e.g. the designs of a study."""
    import numpy as np

    h = hashlib.sha256(extra.encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def is_artifact(path: str | os.PathLike[str]) -> bool:
    """True for the files whose attributes surroflow reads (NetCDF artifacts)."""
    return str(path).endswith(".nc")


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The global attributes of a NetCDF artifact (no data read); ``{}`` for other files."""
    if not is_artifact(path):
        return {}
    import h5py

    def value(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.decode()
        if getattr(v, "shape", None) == (1,):      # netCDF scalars are 1-element arrays in HDF5
            v = v[0]
        return v.item() if hasattr(v, "item") and getattr(v, "ndim", 1) == 0 else v

    try:
        with h5py.File(path, "r") as f:
            return {k: value(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise SurroflowError(f"{path}: not a readable NetCDF4/HDF5 file ({exc}); it may be truncated "
                             "or corrupted: delete it and rerun the stage that makes it") from None


# --------------------------------------------------------------------------- recording
def _as_list(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [str(paths)]
    return [str(p) for p in paths]


def record(path: str | os.PathLike[str], folder: str | os.PathLike[str],
           attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What an artifact in ``folder`` remembers of its input ``path``."""
    attrs = read_attrs(path) if attrs is None else attrs
    rec = {"file": os.path.relpath(os.path.abspath(path), os.path.abspath(folder)),
           "fingerprint": fingerprint(path)}
    for key in (ARTIFACT_ID, "stage", "split"):
        if key in attrs:
            rec[key] = str(attrs[key])
    return rec


def lineage_attrs(inputs: Mapping[str, Any], output: str | os.PathLike[str],
                  cache: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, str]:
    """``artifact_id`` and ``lineage`` attributes of the artifact ``output`` made from ``inputs``
    (role -> path or list of paths; folders and missing optional inputs are skipped)."""
    folder = Path(output).parent
    roles: dict[str, list[dict[str, Any]]] = {}
    for role, paths in inputs.items():
        recs = [record(p, folder, (cache or {}).get(str(p))) for p in _as_list(paths) if Path(p).is_file()]
        if recs:
            roles[str(role)] = recs
    return {ARTIFACT_ID: new_artifact_id(), LINEAGE: json.dumps({"inputs": roles}, sort_keys=True)}


def recorded_inputs(attrs: Mapping[str, Any], artifact: str | os.PathLike[str]
                    ) -> list[tuple[str, Path, dict[str, Any]]]:
    """``(role, path, record)`` of every input recorded in ``attrs`` (paths resolved against the
    artifact's folder)."""
    raw = attrs.get(LINEAGE)
    if raw is None:
        return []
    try:
        roles = json.loads(raw)["inputs"]
    except (TypeError, ValueError, KeyError):
        raise SurroflowError(f"{artifact}: the 'lineage' attribute is not surroflow lineage JSON") from None
    folder = Path(artifact).parent
    return [(role, Path(os.path.normpath(folder / rec["file"])), rec)
            for role, recs in roles.items() for rec in recs]


def changed_inputs(attrs: Mapping[str, Any], artifact: str | os.PathLike[str], *,
                   thorough: bool = True) -> list[str]:
    """Why ``artifact`` is stale: each recorded input that is missing or has changed since the
    artifact was made, as one sentence.  ``thorough``: compare content fingerprints (else the
    cheap ``artifact_id`` of NetCDF inputs, and fingerprints of the other files)."""
    out = []
    for role, path, rec in recorded_inputs(attrs, artifact):
        if not path.is_file():
            out.append(f"its {role} input {path} no longer exists")
            continue
        if not thorough and ARTIFACT_ID in rec and is_artifact(path):
            now = str(read_attrs(path).get(ARTIFACT_ID))
            if now != rec[ARTIFACT_ID]:
                out.append(f"its {role} input {path} was replaced after it was made "
                           f"(artifact id {rec[ARTIFACT_ID][:8]}, now {now[:8]})")
            continue
        if fingerprint(path) != rec["fingerprint"]:
            out.append(f"its {role} input {path} changed after it was made")
    return out


# --------------------------------------------------------------------------- checking
@dataclass(frozen=True)
class Expect:
    """What one input role of a stage must be.

    ``stages``: the rules that may have made it; ``split``: ``"train"``, ``"test"``,
    ``"calibration"``, ``"{split}"`` (the job's ``split`` wildcard) or ``None`` (any / none);
    ``model``: the file is a trained model, whose ``model_name`` must be its file's stem and
    whose ``model_kind`` must be the configured one.
    """

    stages: tuple[str, ...]
    split: str | None = None
    model: bool = False


def _where(path: str | os.PathLike[str]) -> str:
    return str(path)


def check_inputs(inputs: Mapping[str, Any], expected: Mapping[str, Expect], *, study: str,
                 generation: str, split: str | None = None,
                 model_kinds: Mapping[str, str] | None = None, reader: str | None = None
                 ) -> dict[str, dict[str, Any]]:
    """Refuse inputs that do not belong together; return ``{path: attrs}`` of the artifacts read.

    Checked: each role's file is an artifact of one of its ``stages`` (made complete), of this
    ``study``, with the expected split, made with this study's ``generation`` settings; all
    inputs come from one design; no input's own recorded input (also read by this stage) has
    been replaced since; a model file holds the model its name says, of the configured kind
    (``model_kinds``: name -> kind).  Roles not in ``expected`` (e.g. a CSV table) are not
    checked here.  ``reader`` (the stage's name) is named in the messages.
    """
    of = f" of {reader}" if reader else ""
    attrs_of: dict[str, dict[str, Any]] = {}
    designs: dict[str, str] = {}
    for role, exp in expected.items():
        if role not in inputs:
            continue
        for p in _as_list(inputs[role]):
            a = read_attrs(p) if Path(p).is_file() else None
            if a is None:
                raise SurroflowError(f"{p}: file not found (the {role} input)")
            attrs_of[p] = a
            stage = a.get("stage")
            if stage not in exp.stages:
                allowed = " or ".join(f"'{s}'" for s in exp.stages)
                raise SurroflowError(f"{p}: expected a {allowed} artifact as the {role} input{of}, found "
                                     f"stage {stage!r}")
            if int(a.get("complete", 0)) != 1:
                raise SurroflowError(f"{p}: incomplete artifact (no 'complete' attribute); delete it "
                                     "and rerun the stage that makes it")
            if GENERATION not in a or LINEAGE not in a:
                raise SurroflowError(f"{p}: has no lineage record (made by hand or by a surroflow "
                                     "older than 0.3); delete it and rerun the stage that makes it")
            if a.get("study") != study:
                raise SurroflowError(f"{p}: belongs to study {a.get('study')!r}, not {study!r}")
            want = split if exp.split == "{split}" else exp.split
            if want is not None and a.get("split") != want:
                raise SurroflowError(f"{p}: holds the {a.get('split')!r} split, but the {role} input{of} must "
                                     f"be the {want!r} split (a file copied over another?); delete it and "
                                     "rerun")
            if a[GENERATION] != generation:
                raise SurroflowError(f"{p}: made with other simulator or design settings than the "
                                     f"config's study {study!r} (generation hash {str(a[GENERATION])[:12]}, "
                                     f"expected {generation[:12]}); rerun the stages that make it")
            if DESIGN in a:
                designs[p] = str(a[DESIGN])
            if exp.model:
                _check_model(p, a, model_kinds or {})
    if len(set(designs.values())) > 1:
        (p1, d1), *rest = designs.items()
        p2, d2 = next((p, d) for p, d in rest if d != d1)
        raise SurroflowError(f"{p1} and {p2} come from different designs of experiments "
                             f"({d1[:12]} and {d2[:12]}); rerun the stages that make them")
    _check_derived(attrs_of)
    return attrs_of


def _check_model(path: str, attrs: Mapping[str, Any], kinds: Mapping[str, str]) -> None:
    name = Path(path).stem
    held, kind = attrs.get("model_name"), attrs.get("model_kind")
    if held != name:
        raise SurroflowError(f"{path}: holds model {held!r} (kind {kind!r}), but the file is named for "
                             f"model {name!r} (a file copied over another?); delete it and rerun")
    if name not in kinds:
        raise SurroflowError(f"{path}: model {name!r} is not configured; configured: {sorted(kinds)}")
    if kind != kinds[name]:
        raise SurroflowError(f"{path}: model {name!r} is of kind {kind!r}, but the config says "
                             f"{kinds[name]!r}; delete it and rerun")


def _check_derived(attrs_of: Mapping[str, Mapping[str, Any]]) -> None:
    """An input ``Y`` made from another input ``X`` of the same job must have been made from
    ``X`` as it is now (same ``artifact_id``)."""
    ids = {os.path.normpath(os.path.abspath(p)): (p, str(a.get(ARTIFACT_ID))) for p, a in attrs_of.items()}
    for y, a in attrs_of.items():
        for role, path, rec in recorded_inputs(a, y):
            hit = ids.get(os.path.normpath(os.path.abspath(path)))
            if hit is None or ARTIFACT_ID not in rec:
                continue
            x, now = hit
            if now != rec[ARTIFACT_ID]:
                raise SurroflowError(f"{y} was made from another {x} than the one there now (its {role} "
                                     f"input was replaced after it was made: artifact id "
                                     f"{rec[ARTIFACT_ID][:8]}, now {now[:8]}); rerun the stage that makes {y}")


def common_design(attrs: Iterable[Mapping[str, Any]]) -> str | None:
    """The one ``design_sha256`` of the given artifacts (``None`` when none has one)."""
    found = {str(a[DESIGN]) for a in attrs if DESIGN in a}
    return found.pop() if len(found) == 1 else None


__all__ = ["ARTIFACT_ID", "LINEAGE", "GENERATION", "DESIGN", "Expect", "fingerprint", "content_sha256",
           "read_attrs", "record", "lineage_attrs", "recorded_inputs", "changed_inputs", "check_inputs",
           "common_design", "new_artifact_id"]
