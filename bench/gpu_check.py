"""CUDA check of the torch paths (MLP surrogate, forecast steppers): fit on CUDA and on CPU, compare.

Run on a machine with a GPU: ``PYTHONPATH=src python bench/gpu_check.py``. Prints one line per check.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch


def main() -> int:
    print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
    if not torch.cuda.is_available():
        print("no CUDA: nothing to check")
        return 0
    from surroflow.surrogates.mlp import MLPSurrogate
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (800, 3))
    Y = np.column_stack([np.sin(3 * X[:, 0]) + X[:, 1] ** 2, np.cos(2 * X[:, 0] * X[:, 2]), X.sum(axis=1)])
    Xt = rng.uniform(0, 1, (200, 3))
    Yt = np.column_stack([np.sin(3 * Xt[:, 0]) + Xt[:, 1] ** 2, np.cos(2 * Xt[:, 0] * Xt[:, 2]), Xt.sum(axis=1)])
    errs = {}
    for dev in ("cpu", "cuda"):
        t0 = time.perf_counter()
        m = MLPSurrogate(max_epochs=400, random_state=0, device=dev).fit(X, Y)
        err = float(np.sqrt(np.mean((m.predict(Xt) - Yt) ** 2)))
        errs[dev] = err
        print(f"mlp surrogate {dev}: held-out RMSE {err:.3e}, fit {time.perf_counter() - t0:.1f} s")
        if dev == "cuda":   # the one state codec: a CUDA-fitted model reloads and predicts the same
            from surroflow.surrogates.state import from_dataset as load_ds
            from surroflow.surrogates.state import to_dataset as save_ds
            back = load_ds(save_ds(m))
            same = float(np.max(np.abs(back.predict(Xt) - m.predict(Xt))))
            print(f"mlp surrogate cuda: reloaded on {back.device_}, max prediction change {same:.1e}")
            ok_reload = same < 1e-5
    ok = errs["cuda"] < 5 * errs["cpu"] + 1e-3 and ok_reload
    auto = MLPSurrogate(max_epochs=2, random_state=0, device="auto").fit(X, Y)
    print("mlp surrogate auto ->", auto.device_)
    ok = ok and auto.device_.startswith("cuda")

    try:
        from surroflow.forecast import make_forecaster
        from surroflow.surrogates.state import from_dataset, to_dataset
        from surroflow.simulators.chaos import Lorenz63
    except ImportError as exc:  # the device image may lack xarray
        print("forecast check skipped:", exc)
        return 0 if ok else 1
    sim = Lorenz63(dt=0.01, dt_sample=0.01, n_steps=1500, transient=25.0)
    res = sim.run_batch([{"ic": float(u)} for u in np.linspace(0.05, 0.95, 9)])
    traj = np.stack([r["state"] for r in res])
    train, test = traj[:8], traj[8:]
    for kind in ("mlp_stepper", "node"):
        for dev in ("cpu", "cuda"):
            t0 = time.perf_counter()
            f = make_forecaster(kind, hidden=[64, 64], n_iterations=300, rollout_steps=5, random_state=0,
                                device=dev).fit(train)
            roll = f.rollout(test[:, :10], 200)
            finite = bool(np.all(np.isfinite(roll)))
            err = float(np.sqrt(np.mean((roll[:, :20] - test[:, 10:30]) ** 2)))
            print(f"{kind} {dev}: fit {time.perf_counter() - t0:.1f} s, rollout finite={finite}, "
                  f"20-step RMSE {err:.3e}")
            back = from_dataset(to_dataset(f))
            again = back.rollout(test[:, :10], 200)
            print(f"{kind} {dev}: reloaded rollout max change {float(np.nanmax(np.abs(again - roll))):.1e}")
            ok = ok and finite and bool(np.allclose(again, roll, atol=1e-4, equal_nan=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
