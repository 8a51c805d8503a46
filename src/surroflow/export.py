"""Export a trained parametric surrogate to ONNX: a file that runs without surroflow.

    from surroflow.export import export_model
    export_model("results/burgers", "gp", "gp.onnx")       # or a model file: export_model("gp.nc", None, ...)
    python -m surroflow export results/burgers gp -o gp.onnx

The ONNX graph is built with :mod:`onnx.helper` from the arrays of the model file (no torch
exporter, no pickles), in float64 (the MLP's network in its own ``dtype``): the regressor with its
input and output scalings, the coefficient scales of the reduced model and the POD
reconstruction ``coefficients @ modes + mean`` of every variable.  One input ``inputs``
``(n, n_inputs)`` (the columns ``input_names`` of the metadata: the parameters, then time for a
transient *pointwise* model); one output per variable, the flattened field: ``(n, n_space)``
(pointwise: one row per input row) or ``(n, n_time, n_space)`` (*trajectory* formulation: one
row per parameter row, at the training times ``times``).  See ``docs/export.md``.

Supported: global bases with the regressor kinds ``linear``, ``gaussian_process`` (kernel
``rbf``, or ``matern`` with ``nu`` in 0.5, 1.5, 2.5, inf; the mean only), ``rbf`` (without
``neighbors``) and ``mlp`` (any activation in float32; ``gelu`` not in float64, which
onnxruntime cannot run).  Local bases, forecasters and the rest are refused in one sentence.

After writing, the exported graph is run with onnxruntime on points of the training box and
compared with :meth:`~surroflow.surrogates.reduced.ReducedModel.predict_fields`; a difference above
:data:`CHECK_RTOL` (float64) is an error, and the measured one is in the metadata
(``check_max_rel_diff``).
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import SurroflowError, __version__

logger = logging.getLogger(__name__)

#: formats :func:`export_model` writes: an ONNX graph, or the plain-NetCDF layout of a kernel
#: surrogate that :mod:`surroflow.export_reference` (numpy only) evaluates
FORMATS = ("onnx", "netcdf")
#: regressor kinds of the plain-NetCDF layout
NETCDF_KINDS = ("gaussian_process", "rbf")
#: ONNX operator set and IR version of the exported graph (onnxruntime >= 1.14 runs them)
OPSET, IR_VERSION = 18, 8
#: the one input of the graph
INPUT = "inputs"
#: largest relative difference (to the field's largest magnitude) the export check accepts: float64
#: graphs (the exp of the Gaussian and Matern kernels differs from numpy's by an ulp, which the
#: large, cancelling weights of a kernel interpolant amplify to ~1e-9), and MLPs computing in float32
CHECK_RTOL = {"float64": 1e-7, "float32": 1e-4}


class _Graph:
    """Nodes and constants of one ONNX graph, named as they are added."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, value: Any, dtype: Any = np.float64, stem: str = "c") -> str:
        name = self._name(stem)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype=dtype)), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64, "axes")

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        out = out or self._name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def affine(self, x: str, shift: Any, scale: Any, dtype: Any = np.float64) -> str:
        """``(x - shift) / scale``, as the regressors compute it."""
        return self.op("Div", self.op("Sub", x, self.const(shift, dtype)), self.const(scale, dtype))

    def sqdist(self, x: str, centres: np.ndarray) -> str:
        """``(n, m)`` squared Euclidean distances from the rows of ``x`` to ``centres`` ``(m, d)``,
        summed difference by difference as ``scipy.spatial.distance.cdist`` does."""
        diff = self.op("Sub", self.op("Unsqueeze", x, self.ints(1)), self.const(centres))
        return self.op("ReduceSum", self.op("Mul", diff, diff), self.ints(2), keepdims=0)

    def monomials(self, x: str, powers: np.ndarray) -> str:
        """``(n, n_monomials)``: ``prod_j x_j ** powers[k, j]``."""
        return self.op("ReduceProd", self.op("Pow", self.op("Unsqueeze", x, self.ints(1)), self.const(powers)),
                       self.ints(2), keepdims=0)


# ---------------------------------------------------------------------------- regressors
def _linear(g: _Graph, reg: Any, x: str) -> tuple[str, str]:
    F = g.monomials(g.affine(x, reg.x_shift_, reg.x_scale_), reg.powers_)
    return g.op("Add", g.op("MatMul", F, g.const(reg.coef_.T)), g.const(reg.intercept_)), "float64"


def _gaussian_process(g: _Graph, reg: Any, x: str) -> tuple[str, str]:
    from sklearn.gaussian_process.kernels import RBF, Matern
    base = reg.base_kernel_
    ls = np.asarray(base.length_scale, dtype=float)
    xl = g.op("Div", g.affine(x, reg.x_min_, reg.x_scale_), g.const(ls))
    d2 = g.sqdist(xl, reg.X_train_ / ls)
    if type(base) is RBF:
        K = g.op("Exp", g.op("Mul", d2, g.const(-0.5)))
    elif type(base) is Matern and float(base.nu) in (0.5, 1.5, 2.5, math.inf):
        nu = float(base.nu)
        d = g.op("Sqrt", d2)
        if nu == 0.5:
            K = g.op("Exp", g.op("Neg", d))
        elif nu == math.inf:
            K = g.op("Exp", g.op("Div", g.op("Neg", g.op("Mul", d, d)), g.const(2.0)))
        else:
            s = g.op("Mul", d, g.const(math.sqrt(3) if nu == 1.5 else math.sqrt(5)))
            poly = g.op("Add", g.const(1.0), s)
            if nu == 2.5:
                poly = g.op("Add", poly, g.op("Div", g.op("Mul", s, s), g.const(3.0)))
            K = g.op("Mul", poly, g.op("Exp", g.op("Neg", s)))
    else:
        raise SurroflowError(f"the gaussian_process kernel {base!r} has no ONNX export: Matern needs nu in "
                             "0.5, 1.5, 2.5 or inf (other values need Bessel functions)")
    K = g.op("Mul", K, g.const(reg.constant_))
    mean = g.op("MatMul", K, g.const(reg.alpha_))
    return g.op("Add", g.op("Mul", mean, g.const(reg.y_scale_)), g.const(reg.y_mean_)), "float64"


def _rbf_kernel(g: _Graph, kernel: str, r: str) -> str:
    """SciPy's ``RBFInterpolator`` kernels of the distance ``r`` (scipy/interpolate/_rbfinterp_xp.py)."""
    r2 = g.op("Mul", r, r)
    if kernel == "thin_plate_spline":
        zero = g.const(0.0)
        return g.op("Where", g.op("Equal", r, zero), zero, g.op("Mul", r2, g.op("Log", r)))
    formula: dict[str, Callable[[], str]] = {
        "linear": lambda: g.op("Neg", r),
        "cubic": lambda: g.op("Mul", r2, r),
        "quintic": lambda: g.op("Neg", g.op("Mul", g.op("Mul", r2, r2), r)),
        "multiquadric": lambda: g.op("Neg", g.op("Sqrt", g.op("Add", r2, g.const(1.0)))),
        "inverse_multiquadric": lambda: g.op("Reciprocal", g.op("Sqrt", g.op("Add", r2, g.const(1.0)))),
        "inverse_quadratic": lambda: g.op("Reciprocal", g.op("Add", r2, g.const(1.0))),
        "gaussian": lambda: g.op("Exp", g.op("Neg", r2)),
    }
    if kernel not in formula:
        raise SurroflowError(f"the rbf kernel {kernel!r} has no ONNX export; kernels: "
                             f"{sorted([*formula, 'thin_plate_spline'])}")
    return formula[kernel]()


def _rbf(g: _Graph, reg: Any, x: str) -> tuple[str, str]:
    interp = reg.interpolator_
    if reg.neighbors is not None:
        raise SurroflowError(f"an rbf surrogate with neighbors={reg.neighbors} has no ONNX export (each query "
                             "solves its own local system); refit with neighbors: null to export it")
    missing = [a for a in ("_coeffs", "_shift", "_scale", "powers", "epsilon", "y", "kernel") if not hasattr(interp, a)]
    if missing:
        raise SurroflowError(f"this SciPy's RBFInterpolator has no {missing}: the rbf export reads them; "
                             "use the pinned SciPy")
    xs = g.affine(x, reg.x_shift_, reg.x_scale_)
    eps = float(interp.epsilon)
    r = g.op("Sqrt", g.sqdist(g.op("Mul", xs, g.const(eps)), np.asarray(interp.y) * eps))
    parts = [_rbf_kernel(g, str(interp.kernel), r)]
    powers = np.asarray(interp.powers)
    if powers.shape[0]:
        parts.append(g.monomials(g.affine(xs, interp._shift, interp._scale), powers))
    vec = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)
    return g.op("MatMul", vec, g.const(interp._coeffs)), "float64"


_ACTIVATIONS: dict[str, Callable[[_Graph, str, Any], str]] = {
    "tanh": lambda g, h, dt: g.op("Tanh", h),
    "relu": lambda g, h, dt: g.op("Relu", h),
    "silu": lambda g, h, dt: g.op("Mul", h, g.op("Sigmoid", h)),
    # torch's exact GELU: x * 0.5 * (1 + erf(x / sqrt(2)))
    "gelu": lambda g, h, dt: g.op("Mul", g.op("Mul", h, g.const(0.5, dt)), g.op(
        "Add", g.const(1.0, dt), g.op("Erf", g.op("Mul", h, g.const(1 / math.sqrt(2), dt))))),
}


def _mlp(g: _Graph, reg: Any, x: str) -> tuple[str, str]:
    from onnx import TensorProto
    dtype = str(reg.dtype)
    if dtype == "float64" and reg.activation == "gelu":
        raise SurroflowError("an mlp with activation 'gelu' and dtype 'float64' has no ONNX export that "
                             "onnxruntime runs (it has no float64 Erf); use tanh, relu or silu, or dtype float32")
    npdt = np.float64 if dtype == "float64" else np.float32
    sd = {k: v.detach().cpu().numpy() for k, v in reg.net_.state_dict().items()}
    h = x if dtype == "float64" else g.op("Cast", x, to=TensorProto.FLOAT)
    h = g.affine(h, sd["x_mean"], sd["x_std"], npdt)
    n_layers = len(reg.hidden) + 1
    for i in range(n_layers):
        W, b = sd[f"net.{2 * i}.weight"], sd[f"net.{2 * i}.bias"]
        h = g.op("Add", g.op("MatMul", h, g.const(W.T, npdt)), g.const(b, npdt))
        if i < n_layers - 1:
            h = _ACTIVATIONS[reg.activation](g, h, npdt)
    h = g.op("Add", g.op("Mul", h, g.const(sd["y_std"], npdt)), g.const(sd["y_mean"], npdt))
    return (h if dtype == "float64" else g.op("Cast", h, to=TensorProto.DOUBLE)), dtype


#: ONNX builders by regressor kind: ``(graph, fitted regressor, input) -> (output, dtype computed in)``
REGRESSORS: dict[str, Callable[[_Graph, Any, str], tuple[str, str]]] = {
    "linear": _linear, "gaussian_process": _gaussian_process, "rbf": _rbf, "mlp": _mlp}


# ---------------------------------------------------------------------------- the reduced model
def _check_exportable(model: Any) -> None:
    if model.local:
        raise SurroflowError("a model on local bases has no ONNX export (a classifier selects a basis and a "
                             "regressor per row); export a model on global bases")
    kind = model.regressor_.kind
    if kind not in REGRESSORS:
        raise SurroflowError(f"regressor kind {kind!r} has no ONNX export; kinds with one: {sorted(REGRESSORS)}")


def to_onnx(model: Any, metadata: dict[str, Any] | None = None) -> Any:
    """The ``onnx.ModelProto`` of a fitted global-basis
    :class:`~surroflow.surrogates.reduced.ReducedModel` (layout: module docstring)."""
    from onnx import TensorProto, checker, helper
    _check_exportable(model)
    g = _Graph()
    y, dtype = REGRESSORS[model.regressor_.kind](g, model.regressor_, INPUT)
    sc = model._coefficient_scales()
    n_coef = sc.size
    traj = model.formulation_ == "trajectory"
    nt = len(model.times_) if traj else 0
    if traj:   # (n, nt * n_coef), time-major -> (n * nt, n_coef)
        z = g.op("Reshape", g.op("Mul", g.op("Reshape", y, g.ints(-1, nt, n_coef)), g.const(sc)), g.ints(-1, n_coef))
    else:
        z = g.op("Mul", y, g.const(sc))
    outputs = []
    for v, b in model.bases.items():
        s = model.split[v]
        n_space = int(b.modes_.shape[1])
        zv = z if (s.start, s.stop) == (0, n_coef) else g.op("Slice", z, g.ints(s.start), g.ints(s.stop), g.ints(1))
        field = g.op("Add", g.op("MatMul", zv, g.const(b.modes_)), g.const(b.mean_), out=None if traj else v)
        shape: list[Any] = ["n", n_space]
        if traj:
            g.op("Reshape", field, g.ints(-1, nt, n_space), out=v)
            shape = ["n", nt, n_space]
        outputs.append(helper.make_tensor_value_info(v, TensorProto.DOUBLE, shape))
    inputs = [helper.make_tensor_value_info(INPUT, TensorProto.DOUBLE, ["n", len(_input_names(model))])]
    graph = helper.make_graph(g.nodes, "surroflow_reduced_model", inputs, outputs, initializer=g.inits)
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                            producer_name="surroflow", producer_version=__version__,
                            doc_string="surroflow reduced model: inputs -> flattened fields; see docs/export.md")
    meta = {**_metadata(model, dtype), **(metadata or {})}
    helper.set_model_props(onx, {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    checker.check_model(onx)
    return onx


def _input_names(model: Any) -> list[str]:
    """The columns of the ONNX input: parameters, then time for a transient pointwise model."""
    names = list(model.input_names)
    return names[:-1] if model.formulation_ == "trajectory" else names


def _metadata(model: Any, dtype: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "surroflow_version": __version__, "regressor_kind": model.regressor_.kind, "compute_dtype": dtype,
        "formulation": model.formulation_, "input": INPUT, "input_names": _input_names(model),
        "variables": model.variables,
        "space": {v: {"dims": list(s["dims"]), "shape": [int(n) for n in s["shape"]]} for v, s in model.space_.items()},
        "field_attrs": {v: {k: str(a) for k, a in s["attrs"].items()} for v, s in model.space_.items()},
        "time_dim": model.time_dim_ or "",
        "times": [] if model.times_ is None else [float(t) for t in model.times_],
    }
    p = model.parameters_
    if p is not None and "parameter_low" in p.coords and "parameter_high" in p.coords:
        meta["parameter_ranges"] = {str(n): [float(lo), float(hi)] for n, lo, hi in
                                    zip(p["parameter"].values, p["parameter_low"].values, p["parameter_high"].values)}
    return meta


# ---------------------------------------------------------------------------- plain NetCDF
def to_reference_dataset(model: Any, metadata: dict[str, Any] | None = None) -> Any:
    """The plain-NetCDF layout (``docs/export.md``) of a global-basis model whose regressor is a
    Gaussian process or an RBF interpolant, evaluated by :func:`surroflow.export_reference.predict`."""
    import xarray as xr
    _check_exportable(model)
    reg = model.regressor_
    if reg.kind not in NETCDF_KINDS:
        raise SurroflowError(f"the netcdf export holds kernel surrogates {list(NETCDF_KINDS)}; regressor kind "
                             f"{reg.kind!r} exports to onnx (format='onnx')")
    I, T, O = ("input",), ("term", "input"), ("term", "output")
    if reg.kind == "gaussian_process":
        from sklearn.gaussian_process.kernels import RBF, Matern
        base = reg.base_kernel_
        ls = np.asarray(base.length_scale, dtype=float) * np.ones(reg.n_inputs_)
        if type(base) is RBF:
            kernel = "gp_rbf"
        elif type(base) is Matern and float(base.nu) in (0.5, 1.5, 2.5, math.inf):
            kernel = f"gp_matern_{float(base.nu):g}"
        else:
            raise SurroflowError(f"the gaussian_process kernel {base!r} has no netcdf export: Matern needs nu "
                                 "in 0.5, 1.5, 2.5 or inf")
        data = {"input_shift": (I, reg.x_min_), "input_scale": (I, reg.x_scale_), "length_scale": (I, ls),
                "centres": (T, reg.X_train_ / ls), "weights": (O, reg.alpha_),
                "output_shift": (("output",), reg.y_mean_), "output_scale": (("output",), reg.y_scale_)}
        from .surrogates.gaussian_process import _BLOCK_ENTRIES
        attrs: dict[str, Any] = {"kernel": kernel, "constant": float(reg.constant_),
                                 "block_rows": max(1, _BLOCK_ENTRIES // reg.X_train_.shape[0])}
    else:
        interp = reg.interpolator_
        if reg.neighbors is not None:
            raise SurroflowError(f"an rbf surrogate with neighbors={reg.neighbors} has no netcdf export (each "
                                 "query solves its own local system); refit with neighbors: null to export it")
        data = {"input_shift": (I, reg.x_shift_), "input_scale": (I, reg.x_scale_),
                "centres": (("centre", "input"), np.asarray(interp.y)), "weights": (O, interp._coeffs),
                "poly_shift": (I, interp._shift), "poly_scale": (I, interp._scale),
                "powers": (("monomial", "input"), np.asarray(interp.powers, dtype=np.int64))}
        attrs = {"kernel": str(interp.kernel), "epsilon": float(interp.epsilon)}
    data["coefficient_scale"] = (("coefficient",), model._coefficient_scales())
    for v, b in model.bases.items():
        data[f"{v}__modes"] = ((f"{v}__mode", f"{v}__space"), b.modes_)
        data[f"{v}__mean"] = ((f"{v}__space",), b.mean_)
    meta = {**_metadata(model, "float64"), **(metadata or {}), **attrs,
            "n_time": len(model.times_) if model.formulation_ == "trajectory" else 0,
            "surroflow_export": "netcdf-reference-1"}
    return xr.Dataset(data, attrs={k: v if isinstance(v, (str, int, float)) else json.dumps(v)
                                   for k, v in meta.items()})


# ---------------------------------------------------------------------------- checking
def check_points(model: Any, n: int = 6, seed: int = 0) -> np.ndarray | None:
    """``n`` parameter rows inside the training box (``None`` when the model records no ranges)."""
    p = model.parameters_
    if p is None or "parameter_low" not in p.coords or "parameter_high" not in p.coords:
        return None
    lo, hi = np.asarray(p["parameter_low"].values, float), np.asarray(p["parameter_high"].values, float)
    return lo + (hi - lo) * np.random.default_rng(seed).random((n, lo.size))


def onnx_inputs(model: Any, design: np.ndarray) -> np.ndarray:
    """The exported model's input rows for the parameter rows ``design`` at the training times
    (pointwise transient models: one row per sample and time, time last)."""
    from .snapshots import surrogate_inputs
    design = np.atleast_2d(np.asarray(design, dtype=float))
    return design if model.formulation_ == "trajectory" else surrogate_inputs(design, model.times_)


def run_export(exported: Any, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run an exported model (``onnx.ModelProto`` with onnxruntime, or the NetCDF layout with
    :mod:`surroflow.export_reference`) on the input rows ``inputs``."""
    if hasattr(exported, "SerializeToString"):
        import onnxruntime as ort
        sess = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
        return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {INPUT: inputs})))
    from .export_reference import predict
    return predict(exported, inputs)


def compare(model: Any, exported: Any, design: np.ndarray) -> dict[str, dict[str, float]]:
    """Run ``exported`` on the parameter rows ``design`` and compare with ``model.predict_fields``:
    ``{variable: {"max_abs_diff", "max_rel_diff"}}`` (relative to the field's largest magnitude)."""
    got = run_export(exported, onnx_inputs(model, design))
    expected = model.predict_fields(design)
    out = {}
    for v in model.variables:
        e = np.asarray(expected[v]).reshape(got[v].shape)
        diff = float(np.max(np.abs(got[v] - e)))
        out[v] = {"max_abs_diff": diff, "max_rel_diff": diff / max(float(np.max(np.abs(e))), np.finfo(float).tiny)}
    return out


# ---------------------------------------------------------------------------- entry point
def load_reduced_model(source: str | os.PathLike[str], name: str | None = None) -> tuple[Any, Path, dict[str, Any]]:
    """The reduced model of ``<source>/train/<name>.nc`` (a study folder) or of the model file
    ``source``; with its path and file attributes."""
    from .api import model_path
    from .io import open_dataset
    from .surrogates.reduced import ReducedModel
    src = Path(source)
    if src.is_dir():
        if not name:
            raise SurroflowError(f"{src} is a study folder: give the model name as well")
        path = model_path(src, name)
    elif src.is_file():
        path = src
    else:
        raise SurroflowError(f"{src}: no such study folder or model file")
    ds = open_dataset(path, stage=("train_surrogate",) if src.is_dir() else None)
    if ds.attrs.get("model") != "reduced_model":
        raise SurroflowError(f"{path}: not a parametric surrogate (a reduced model); only those export")
    if name and ds.attrs.get("model_name") not in (None, name):
        raise SurroflowError(f"{path} holds model {ds.attrs['model_name']!r}, not {name!r}")
    return ReducedModel.from_dataset(ds), path, dict(ds.attrs)


def export_model(source: str | os.PathLike[str], name: str | None, out_path: str | os.PathLike[str],
                 format: str = "onnx", check: bool = True) -> Path:
    """Export model ``name`` of the study folder ``source`` (``results/<study>``), or the model
    file ``source``, to ``out_path`` (written atomically) as ``format`` (:data:`FORMATS`; see the
    module docstring).  With ``check`` the exported model is run (onnxruntime, or the numpy
    reference) and compared with the model's own prediction on points of the training box: a
    relative difference above :data:`CHECK_RTOL` is an error, and nothing is written."""
    from .io import atomic_path, write_dataset
    if format not in FORMATS:
        raise SurroflowError(f"export format must be one of {list(FORMATS)}, got {format!r}")
    model, path, attrs = load_reduced_model(source, name)
    meta: dict[str, Any] = {k: str(attrs[k]) for k in ("model_name", "model_kind", "study", "git_commit")
                            if k in attrs}
    meta["source"] = path.name
    try:
        exported = to_onnx(model, meta) if format == "onnx" else to_reference_dataset(model, meta)
    except SurroflowError as exc:
        raise SurroflowError(f"{path}: {exc}") from None
    design = check_points(model) if check else None
    if design is not None:
        worst = max(d["max_rel_diff"] for d in compare(model, exported, design).values())
        dtype = (next(p.value for p in exported.metadata_props if p.key == "compute_dtype")
                 if format == "onnx" else "float64")
        if not worst <= CHECK_RTOL[dtype]:
            raise SurroflowError(f"{path}: the exported model differs from the model's prediction by {worst:.3g} "
                                 f"(relative), above {CHECK_RTOL[dtype]:g}; not written")
        logger.info("export %s: max relative difference to predict %.3g", path, worst)
        if format == "onnx":
            from onnx import helper
            helper.set_model_props(exported, {**{p.key: p.value for p in exported.metadata_props},
                                              "check_max_rel_diff": f"{worst:.3g}"})
        else:
            exported.attrs["check_max_rel_diff"] = f"{worst:.3g}"
    out = Path(out_path)
    if format == "netcdf":
        return write_dataset(exported, out)
    with atomic_path(out, suffix=".tmp.onnx") as tmp:
        Path(tmp).write_bytes(exported.SerializeToString())
    return out


__all__ = ["export_model", "to_onnx", "to_reference_dataset", "compare", "run_export", "check_points",
           "onnx_inputs", "load_reduced_model", "REGRESSORS", "FORMATS", "NETCDF_KINDS", "INPUT", "CHECK_RTOL"]
