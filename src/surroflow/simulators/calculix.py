"""CalculiX study: an elasto-plastic plate with a hole under monotonic or cyclic tension.

A quarter of a plate (``width`` x ``height``, hole of ``radius``; symmetry on ``x = 0`` and
``y = 0``) is meshed once with a structured quad mesh (:func:`surroflow.mesh.plate_with_hole`),
in plane stress (``CPS4``) or plane strain (``CPE4``).  The top edge carries a traction
``traction * a(t)`` where ``a`` ramps 0 -> 1 (``monotonic``) or cycles 0 -> 1 -> -1 -> 0
(``cyclic``).  The material is linear elastic with von Mises plasticity and linear isotropic
or kinematic hardening (``*PLASTIC``; the table is ``(yield_stress, 0)`` and
``(yield_stress + hardening_modulus * max_plastic_strain, max_plastic_strain)``).

Each sample renders the packaged template ``templates/calculix_plate.inp`` with numbers only,
runs ``ccx -i job`` through :class:`~surroflow.simulators.process.CommandRunner` (own working
directory, timeout, retries, log kept on failure) and reads ``job.frd`` with the ``frd``
reader of :mod:`surroflow.readers`.  Results are written at fixed output times
(``*TIME POINTS``), so every sample has the same ``step`` coordinate.

Outputs (dims exclude ``sample``): ``displacement(step, node, component)`` in mm,
``von_mises(step, node)`` in MPa and ``peeq(step, node)`` (equivalent plastic strain, 1), both
nodal values that CalculiX extrapolates from the integration points (negative PEEQ overshoots
of the extrapolation are clipped to 0).  :meth:`CalculixPlate.mesh_variables` gives the mesh for the
dataset; ``mass(node)`` among them, the lumped-mass POD weights.
"""
from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, ClassVar, Mapping

import numpy as np

from .. import SurroflowError
from ..mesh import Mesh, mesh_variables, plate_with_hole
from .base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, check_setting,
                   check_unknown_settings, collect_outputs)
from .process import KEEP_CHOICES as KEEP, CommandRunner, default_workdir_root, format_value

INSTALL_HINT = ("install CalculiX with `apt-get install calculix-ccx` (Debian/Ubuntu; "
                "conda-forge: `calculix`), or set simulator.settings.ccx to the path of ccx")

#: fixed settings and their defaults (units: mm, MPa)
DEFAULTS: dict[str, Any] = {
    "width": 50.0,               # mm, half-width of the plate (x)
    "height": 50.0,              # mm, half-height (y); the traction acts on y = height
    "radius": 10.0,              # mm, hole radius
    "thickness": 1.0,            # mm
    "n_theta": 20,               # cells along each half of the hole (40 around the quarter)
    "n_radial": 24,              # cells from the hole to the outer edges (1025 nodes in all)
    "grading": 1.12,             # growth of the radial cell size away from the hole
    "element": "CPS4",           # CPS4 plane stress, CPE4 plane strain
    "youngs_modulus": 210000.0,  # MPa
    "poisson_ratio": 0.3,
    "hardening": "isotropic",    # isotropic or kinematic (Prager/Ziegler, for cyclic loads)
    "max_plastic_strain": 1.0,   # end of the linear hardening table
    "loading": "monotonic",      # monotonic (0 -> 1) or cyclic (0 -> 1 -> -1 -> 0 per cycle)
    "n_cycles": 1,               # cycles for cyclic loading
    "increments_per_ramp": 10,   # output times per unit of load time (one ramp 0 -> 1)
    "max_increments": 1000,      # CalculiX INC limit
    "ccx": "ccx",                # program name or path
    "template": None,            # path of an alternative input template
    "workdir_root": None,        # default: <tmp>/surroflow-runs-<uid> (process.default_workdir_root)
    "timeout_s": 120.0,
    "retries": 1,
    "keep_workdirs": "failed",
    "threads": 1,                # OMP_NUM_THREADS for ccx (one sample per dask worker)
}
ELEMENTS = ("CPS4", "CPE4")
HARDENING = ("isotropic", "kinematic")
LOADING = ("monotonic", "cyclic")

#: the varied parameters: (name, low, high, units, long name, value when not varied)
PARAMETERS: tuple[tuple[str, float, float, str, str, float], ...] = (
    ("traction", 50.0, 150.0, "MPa", "peak remote traction on the top edge", 100.0),
    ("yield_stress", 200.0, 400.0, "MPa", "initial yield stress", 300.0),
    ("hardening_modulus", 500.0, 5000.0, "MPa", "linear hardening modulus d(sigma)/d(eps_p)", 2000.0),
)

_DIVERGED_MARKERS = ("increment size smaller than minimum", "too many cutbacks",
                     "divergence", "no convergence")


def classify_ccx_failure(log_text: str, returncode: int | None) -> str:
    """``diverged`` when the CalculiX log shows a convergence failure, else ``failed``."""
    low = log_text.lower()
    return "diverged" if any(m in low for m in _DIVERGED_MARKERS) else "failed"


def _fmt(x: float) -> str:
    return repr(float(x))


def _id_lines(ids: np.ndarray, per_line: int = 16) -> str:
    one = np.asarray(ids, dtype=np.int64) + 1
    return "\n".join(", ".join(str(int(v)) for v in one[k:k + per_line])
                     for k in range(0, one.size, per_line))


def load_history(loading: str, n_cycles: int, per_ramp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(amplitude times, amplitude values, output times)`` of the load history."""
    if loading == "monotonic":
        t_amp, a_amp = np.array([0.0, 1.0]), np.array([0.0, 1.0])
    else:
        t_amp = np.concatenate([[0.0]] + [4.0 * c + np.array([1.0, 3.0, 4.0]) for c in range(n_cycles)])
        a_amp = np.concatenate([[0.0]] + [np.array([1.0, -1.0, 0.0]) for _ in range(n_cycles)])
    total = float(t_amp[-1])
    n_out = int(round(total * per_ramp))
    times = np.arange(1, n_out + 1) / per_ramp
    return t_amp, a_amp, times


def model_include(mesh: Mesh, element: str, t_amp: np.ndarray, a_amp: np.ndarray,
                  out_times: np.ndarray) -> str:
    """``model.inp``: nodes, elements, sets, the load amplitude and the output times."""
    lines = ["** surroflow calculix_plate model (one-based CalculiX numbering = node index + 1)",
             "*NODE, NSET=NALL"]
    lines += [f"{i + 1}, {_fmt(x)}, {_fmt(y)}" for i, (x, y) in enumerate(mesh.points[:, :2])]
    lines.append(f"*ELEMENT, TYPE={element}, ELSET=EALL")
    lines += [f"{e + 1}, " + ", ".join(str(int(n) + 1) for n in c) for e, c in enumerate(mesh.cells)]
    for name, key in (("NSYMX", "sym_x"), ("NSYMY", "sym_y"), ("NTOP", "top"), ("NHOLE", "hole")):
        lines += [f"*NSET, NSET={name}", _id_lines(mesh.node_sets[key])]
    lines += ["*ELSET, ELSET=ETOP", _id_lines(mesh.cell_sets["top"])]
    lines.append("*AMPLITUDE, NAME=LOADAMP")
    lines += [f"{_fmt(t)}, {_fmt(a)}" for t, a in zip(t_amp, a_amp)]
    lines.append("*TIME POINTS, NAME=OUTPUT")
    lines += [_fmt(t) for t in out_times]
    return "\n".join(lines) + "\n"


def ccx_version(program: str) -> str:
    try:
        out = subprocess.run([program, "-v"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL)
        text = (out.stdout + out.stderr).strip()
        for line in text.splitlines():
            if "version" in line.lower():
                return line.strip()
        return text[:80] or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class CalculixPlate(Simulator):
    """Elasto-plastic quarter plate with a hole, solved by CalculiX (``name: calculix_plate``)."""

    name = "calculix_plate"
    time_dim = "step"
    #: every setting and its default (``python -m surroflow simulators`` lists them)
    setting_defaults: ClassVar[Mapping[str, Any]] = DEFAULTS

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        check_unknown_settings(self.name, settings, self.setting_defaults)
        s = {**DEFAULTS, **settings}
        self.options = s
        self._check(s)
        self.mesh = plate_with_hole(float(s["width"]), float(s["height"]), float(s["radius"]),
                                    int(s["n_theta"]), int(s["n_radial"]), float(s["grading"]))
        t_amp, a_amp, self.out_times = load_history(s["loading"], int(s["n_cycles"]),
                                                    int(s["increments_per_ramp"]))
        self.load_factor = np.interp(self.out_times, t_amp, a_amp)
        per_ramp = int(s["increments_per_ramp"])
        tpl_path = Path(s["template"]) if s["template"] else None
        if tpl_path is not None:
            if not tpl_path.is_file():
                raise SurroflowError(f"simulator.settings.template: {tpl_path} not found")
            raw = tpl_path.read_text()
        else:
            raw = resources.files("surroflow.simulators").joinpath("templates/calculix_plate.inp").read_text()
        # pass 1: fixed choices from the validated settings (enums and an integer only)
        template_text = Template(raw).safe_substitute(
            hardening=s["hardening"].upper(), max_increments=str(int(s["max_increments"])))
        self.constants = {
            "youngs_modulus": float(s["youngs_modulus"]), "poisson_ratio": float(s["poisson_ratio"]),
            "max_plastic_strain": float(s["max_plastic_strain"]), "thickness": float(s["thickness"]),
            "initial_increment": 1.0 / per_ramp, "total_time": float(t_amp[-1]),
            "minimum_increment": 1e-3 / float(per_ramp), "maximum_increment": 1.0 / per_ramp,
        }
        model = model_include(self.mesh, s["element"], t_amp, a_amp, self.out_times)
        self.runner = CommandRunner(
            [s["ccx"], "-i", "{jobname}"], template_text, "job.inp", "frd",
            s["workdir_root"] or default_workdir_root(), timeout_s=s["timeout_s"],
            retries=int(s["retries"]), keep_workdirs=s["keep_workdirs"],
            files={"model.inp": model.encode()},
            env={"OMP_NUM_THREADS": str(int(s["threads"])),
                 "CCX_NPROC_EQUATION_SOLVER": str(int(s["threads"])),
                 "CCX_NPROC_RESULTS": str(int(s["threads"]))},
            classify_failure=classify_ccx_failure, install_hint=INSTALL_HINT, program_key="ccx")
        self.solver_version = ccx_version(self.runner.program)

    # ------------------------------------------------------------------ settings
    @staticmethod
    def _check(s: Mapping[str, Any]) -> None:
        def positive(key: str, integer: bool = False) -> None:
            v = s[key]
            ok = (isinstance(v, int) and not isinstance(v, bool)) if integer else \
                (isinstance(v, (int, float)) and not isinstance(v, bool))
            if not ok or not np.isfinite(v) or v <= 0:
                kind = "an integer" if integer else "a number"
                raise SurroflowError(f"simulator.settings.{key}={v!r}: {kind} > 0 is required")
        for k in ("width", "height", "radius", "thickness", "grading", "youngs_modulus",
                  "max_plastic_strain"):
            positive(k)
        for k in ("n_theta", "n_radial", "n_cycles", "increments_per_ramp", "max_increments"):
            positive(k, integer=True)
        # what goes to the CommandRunner: the same typed checks as the external simulator's
        check_setting("threads", s["threads"], "int", minimum=1)
        check_setting("retries", s["retries"], "int", minimum=0)
        check_setting("timeout_s", s["timeout_s"], "float", exclusive_minimum=0, nullable=True)
        check_setting("keep_workdirs", s["keep_workdirs"], "choice", choices=KEEP)
        check_setting("ccx", s["ccx"], "str")
        nu = s["poisson_ratio"]
        if isinstance(nu, bool) or not isinstance(nu, (int, float)) or not (-1.0 < nu < 0.5):
            raise SurroflowError(f"simulator.settings.poisson_ratio={nu!r}: must lie in (-1, 0.5)")
        for key, allowed in (("element", ELEMENTS), ("hardening", HARDENING), ("loading", LOADING)):
            if s[key] not in allowed:
                raise SurroflowError(f"simulator.settings.{key}={s[key]!r} is not allowed; "
                                     f"allowed: {list(allowed)}")
        for key in ("template", "workdir_root"):
            check_setting(key, s[key], "path", nullable=True)
        if not s["radius"] < min(s["width"], s["height"]):
            raise SurroflowError("simulator.settings.radius must be smaller than width and height")

    # ------------------------------------------------------------------ declarations
    def parameters(self) -> list[Parameter]:
        return [Parameter(n, lo, hi, u, ln) for n, lo, hi, u, ln, _ in PARAMETERS]

    def parameter_defaults(self) -> dict[str, float]:
        """Values of the parameters that a design does not vary."""
        return {n: d for n, *_, d in PARAMETERS}

    def outputs(self) -> list[OutputVariable]:
        return [
            OutputVariable("displacement", ("step", "node", "component"), "mm", "nodal displacement"),
            OutputVariable("von_mises", ("step", "node"), "MPa", "von Mises equivalent stress (nodal)"),
            OutputVariable("peeq", ("step", "node"), "1",
                           "equivalent plastic strain (nodal, extrapolated, clipped at 0)"),
        ]

    def coordinates(self) -> dict[str, Coordinate]:
        return {
            "step": Coordinate(("step",), self.out_times.copy(), "1",
                               "load time (one unit per ramp of the load amplitude)",
                               {"load_factor": self.load_factor.copy(),
                                "loading": self.options["loading"]}),
            "node": Coordinate(("node",), np.arange(self.mesh.n_nodes), "1", "mesh node index"),
            "component": Coordinate(("component",), np.array(["x", "y"], dtype=object), "1",
                                    "displacement component"),
        }

    def attrs(self) -> dict[str, Any]:
        s = self.options
        return {
            "geometry": "quarter plate with a central hole, symmetry on x=0 and y=0, traction on y=height",
            "plate_width_mm": float(s["width"]), "plate_height_mm": float(s["height"]),
            "hole_radius_mm": float(s["radius"]), "thickness_mm": float(s["thickness"]),
            "element_type": s["element"], "youngs_modulus_MPa": float(s["youngs_modulus"]),
            "poisson_ratio": float(s["poisson_ratio"]), "hardening": s["hardening"],
            "loading": s["loading"], "solver": "CalculiX ccx", "solver_version": self.solver_version,
        }

    # ------------------------------------------------------------------ mesh
    def mesh_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]]:
        """``node_coordinates(node, space)`` and ``connectivity(cell, vertex)`` for the dataset."""
        return mesh_variables(self.mesh, units="mm", thickness=float(self.options["thickness"]))

    # ------------------------------------------------------------------ running
    def values_for(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Template values of a design point (missing parameters take their defaults)."""
        names = [p.name for p in self.parameters()]
        extra = sorted(map(str, set(params) - set(names)))
        if extra:
            raise SampleFailure(f"calculix_plate: unknown parameters {extra}; allowed: {names}", "failed")
        p = {**self.parameter_defaults(), **params}
        values: dict[str, Any] = dict(self.constants)
        for n in names:
            values[n] = p[n]
        for n in names:                  # derived numbers only from validated numbers
            format_value(n, p[n])
        if float(p["yield_stress"]) <= 0 or float(p["hardening_modulus"]) < 0:
            raise SampleFailure("calculix_plate: yield_stress must be > 0 and hardening_modulus >= 0",
                                "failed")
        values["negative_traction"] = -float(p["traction"])
        values["flow_stress_max"] = float(p["yield_stress"]) + float(p["hardening_modulus"]) * \
            float(self.constants["max_plastic_strain"])
        return values

    def run_sample(self, params: Mapping[str, Any], sample_id: str | None = None) -> dict[str, np.ndarray]:
        raw = self.runner.run(self.values_for(params), sample_id)
        times = np.asarray(raw["step"])
        if times.shape != self.out_times.shape or not np.allclose(times, self.out_times, atol=1e-6):
            last = f"{times[-1]:g}" if times.size else "none"
            raise SampleFailure(f"calculix_plate: results at {times.size} output times (last {last}), "
                                f"expected {self.out_times.size} up to {self.out_times[-1]:g}",
                                "diverged")
        ids = np.asarray(raw["node_ids"])
        n = self.mesh.n_nodes
        if ids.shape != (n,) or not np.array_equal(ids, np.arange(1, n + 1)):
            raise SampleFailure(f"calculix_plate: the .frd holds {ids.size} nodes, expected 1..{n}",
                                "failed")
        # nodal PEEQ is extrapolated from the integration points: clip its small negative overshoots
        fields = {"displacement": np.asarray(raw["displacement"])[..., :2],
                  "von_mises": raw["von_mises"], "peeq": np.maximum(np.asarray(raw["peeq"]), 0.0)}
        return collect_outputs(fields, self.outputs(),
                               {v.name: self.output_shape(v) for v in self.outputs()},
                               where="calculix_plate")
