"""Reference predictor of the plain-NetCDF export of a kernel surrogate: numpy only, no surroflow.

Copy this file next to a model written by ``export_model(..., format="netcdf")`` (layout in
``docs/export.md``) and run::

    import xarray as xr, export_reference as ref
    fields = ref.predict(xr.open_dataset("gp_export.nc"), inputs)   # {variable: (n, [n_time,] n_space)}

``inputs`` are the rows ``(n, n_inputs)`` named by the attribute ``input_names``.  It evaluates
the same floating-point operations, in the same order, as surroflow's ``predict``, so it
reproduces it to rounding (1e-10 tested) even where the regressor's weights are large and cancel
(Gaussian process, Gaussian RBF), which an ONNX runtime's own ``exp`` does not.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

#: kernels of the distance r, or of the squared distance d2 (GP rbf); scipy's and sklearn's formulas
KERNELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gp_rbf": lambda d2: np.exp(d2 * -0.5),
    "gp_matern_0.5": lambda r: np.exp(-r),
    "gp_matern_1.5": lambda r: (1.0 + r * np.sqrt(3)) * np.exp(-(r * np.sqrt(3))),
    "gp_matern_2.5": lambda r: (1.0 + r * np.sqrt(5) + (r * np.sqrt(5)) ** 2 / 3.0) * np.exp(-(r * np.sqrt(5))),
    "gp_matern_inf": lambda r: np.exp(-(r ** 2) / 2.0),
    "linear": lambda r: -r,
    "thin_plate_spline": lambda r: np.where(r == 0, 0.0, r ** 2 * np.log(np.where(r == 0, 1.0, r))),
    "cubic": lambda r: r ** 3,
    "quintic": lambda r: -r ** 5,
    "multiquadric": lambda r: -np.sqrt(r ** 2 + 1),
    "inverse_multiquadric": lambda r: 1.0 / np.sqrt(r ** 2 + 1.0),
    "inverse_quadratic": lambda r: 1.0 / (r ** 2 + 1.0),
    "gaussian": lambda r: np.exp(-r ** 2),
}


def regress(ds: Any, X: np.ndarray) -> np.ndarray:
    """The regressor's outputs ``(n, n_outputs)`` for the input rows ``X``."""
    a = lambda name: np.asarray(ds[name].values, dtype=float)  # noqa: E731
    kernel = str(ds.attrs["kernel"])
    xs = (X - a("input_shift")) / a("input_scale")
    if ds.attrs["regressor_kind"] == "gaussian_process":
        xl = xs / a("length_scale")
        d2 = np.sum((xl[:, None, :] - a("centres")[None]) ** 2, axis=2)
        K = KERNELS[kernel](d2 if kernel == "gp_rbf" else np.sqrt(d2)) * float(ds.attrs["constant"])
        # the product in blocks of block_rows rows, as surroflow's predict: BLAS rounds a row by the
        # shape of its product, and the GP's large cancelling weights amplify that to ~1e-9
        rows, W = int(ds.attrs["block_rows"]), a("weights")
        mean = np.concatenate([K[i:i + rows] @ W for i in range(0, K.shape[0], rows)] or [K @ W])
        return mean * a("output_scale") + a("output_shift")
    eps = float(ds.attrs["epsilon"])                      # scipy's RBFInterpolator
    r = np.sqrt(np.sum(((xs * eps)[:, None, :] - (a("centres") * eps)[None]) ** 2, axis=2))
    vec = [KERNELS[kernel](r)]
    powers = np.asarray(ds["powers"].values, dtype=np.int64)
    if powers.size:
        vec.append(np.prod(((xs - a("poly_shift")) / a("poly_scale"))[:, None, :] ** powers, axis=2))
    return np.hstack(vec) @ a("weights")


def predict(ds: Any, inputs: Any) -> dict[str, np.ndarray]:
    """Flattened fields ``{variable: (n, n_space)}`` (pointwise) or ``(n, n_time, n_space)``
    (trajectory) for the input rows ``inputs`` (``(n, n_inputs)``)."""
    X = np.atleast_2d(np.asarray(inputs, dtype=float))
    Y = regress(ds, X)
    sc = np.asarray(ds["coefficient_scale"].values, dtype=float)
    nt = int(ds.attrs["n_time"]) if ds.attrs["formulation"] == "trajectory" else 0
    Z = (Y.reshape(X.shape[0], nt, sc.size) * sc).reshape(-1, sc.size) if nt else Y * sc
    out, start = {}, 0
    for v in json.loads(ds.attrs["variables"]):
        modes = np.asarray(ds[f"{v}__modes"].values, dtype=float)
        field = Z[:, start:start + modes.shape[0]] @ modes + np.asarray(ds[f"{v}__mean"].values, dtype=float)
        out[v] = field.reshape(X.shape[0], nt, -1) if nt else field
        start += modes.shape[0]
    return out


__all__ = ["predict", "regress", "KERNELS"]
