"""Import layers of the package, read from the code with ``ast`` (imports inside functions too).

Bottom to top (docs/architecture.md)::

    surroflow (the package's __init__), schemas (package data)
    io, logging_utils                   (io must not import snapshots)
    snapshots
    design, simulators, readers, mesh
    reduction, dynamics                 (dynamics must not import simulators)
    surrogates, forecast, rom
    evaluation, uq
    stages, config, distributed         (the dask cluster of a stage job)
    cli, __main__, api                  (api: re-exported lazily by the package root)

A module may import its own tier or any tier below, never one above; a new top-level module
must be placed in :data:`TIERS`.  No import cycle between modules (a package ``__init__``
re-exporting its own children is not an arrow back).  The checker is tested on a copy of the
package with one wrong-way import added.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import surroflow

SRC = Path(surroflow.__file__).resolve().parent

#: top-level parts (first name under the package), bottom to top; "" is the package itself
TIERS: list[set[str]] = [
    {"", "schemas"},                         # the package itself (SurroflowError); package data
    {"io", "logging_utils", "lineage", "safety"},
    {"snapshots"},
    {"design", "simulators", "readers", "mesh"},
    {"reduction", "dynamics"},
    {"surrogates", "forecast", "rom"},
    {"evaluation", "uq", "adaptive"},
    {"stages", "config", "distributed"},
    {"cli", "__main__", "api", "export", "export_reference"},
]
#: the one arrow allowed upward: the package root re-exports the Python API lazily (PEP 562
#: ``__getattr__``), so ``import surroflow as sf; sf.load_model`` works without the package
#: importing anything at import time
ROOT_EXPORTS = {"api"}
#: arrows forbidden although they run downward: Lyapunov exponents work on anything with the
#: tangent dynamics, never on a simulator class (and simulators know nothing of dynamics)
EXTRA_FORBIDDEN = {("dynamics", "simulators")}
RANK = {part: k for k, tier in enumerate(TIERS) for part in tier}


def module_names(src: Path) -> dict[str, Path]:
    pkg = src.name
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = [pkg, *path.relative_to(src).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _known(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(mod: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of the package that ``mod`` imports anywhere in its code."""
    pkg = mod.split(".")[0]
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] == pkg:
                k = _known(t, mods)
                if k and k != mod:
                    found.add(k)
    return found


def import_graph(src: Path) -> dict[str, set[str]]:
    mods = module_names(src)
    return {m: imports_of(m, p, mods) for m, p in mods.items()}


def part(mod: str) -> str:
    bits = mod.split(".")
    return bits[1] if len(bits) > 1 else ""


def cycles(graph: dict[str, set[str]], src: Path) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    mods = module_names(src)
    g = {a: {b for b in deps if not (mods[a].name == "__init__.py" and b.startswith(a + "."))}
         for a, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in g:
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def violations(src: Path) -> list[str]:
    """Every forbidden arrow, unplaced module and import cycle of the package at ``src``."""
    graph = import_graph(src)
    bad = []
    for a in sorted(graph):
        pa = part(a)
        if pa not in RANK:
            bad.append(f"unplaced: {a} (add {pa!r} to TIERS in tests/unit/test_layers.py)")
            continue
        for b in sorted(graph[a]):
            pb = part(b)
            if pb not in RANK:
                continue                     # reported as unplaced on its own
            if a == src.name and pb in ROOT_EXPORTS:
                continue                     # the lazy re-export of the Python API
            if RANK[pb] > RANK[pa] or (pa, pb) in EXTRA_FORBIDDEN:
                bad.append(f"forbidden: {a} -> {b}")
    bad += ["cycle: " + " <-> ".join(c) for c in cycles(graph, src)]
    return bad


# ----------------------------------------------------------------------------- the package
def test_package_imports_run_downward_without_cycles():
    bad = violations(SRC)
    assert not bad, "\n".join(bad)


# ----------------------------------------------------------------------------- the checker
@pytest.fixture
def copy(tmp_path):
    dst = tmp_path / "surroflow"
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text + "\n", encoding="utf-8")


def test_checker_reports_an_upward_import(copy):
    before = set(violations(copy))
    _append(copy / "io.py", "from surroflow.evaluation import metrics  # wrong way")
    new = set(violations(copy)) - before
    assert any(b.startswith("forbidden: surroflow.io -> surroflow.evaluation") for b in new), new


def test_checker_reports_a_lazy_relative_import(copy):
    before = set(violations(copy))
    _append(copy / "simulators" / "base.py", "def _late():\n    from ..dynamics import lyapunov\n    return lyapunov")
    new = set(violations(copy)) - before
    assert "forbidden: surroflow.simulators.base -> surroflow.dynamics.lyapunov" in new
    _append(copy / "dynamics" / "lyapunov.py", "def _late():\n    import surroflow.simulators.base")
    assert "forbidden: surroflow.dynamics.lyapunov -> surroflow.simulators.base" in violations(copy)


def test_checker_reports_a_cycle_and_an_unplaced_module(copy):
    before = set(violations(copy))
    _append(copy / "mesh.py", "from .readers import netcdf")        # readers.netcdf imports mesh
    (copy / "newthing.py").write_text("from . import io\n")
    new = set(violations(copy)) - before
    assert any(b.startswith("cycle: ") and "surroflow.mesh" in b and "surroflow.readers.netcdf" in b
               for b in new), new
    assert any(b.startswith("unplaced: surroflow.newthing") for b in new), new


def test_checker_accepts_downward_imports(copy):
    before = set(violations(copy))
    _append(copy / "stages" / "__init__.py", "from ..evaluation import metrics")
    _append(copy / "design.py", "def _late():\n    from .io import open_dataset")
    assert set(violations(copy)) == before
