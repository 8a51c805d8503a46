"""Train stage: fit one configured surrogate on the reduced coordinates of the training set."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import SurroflowError
from ..io import open_dataset, provenance
from ..logging_utils import stage_logger
from ..reduction.pod import POD
from ..snapshots import ok_samples, time_dim_of
from . import make_surrogate, surrogate_class
from .io import save_surrogate
from .reduced import training_arrays


def load_bases(basis_ncs: Sequence[str]) -> dict[str, POD]:
    bases = {}
    for p in basis_ncs:
        ds = open_dataset(p, stage="reduce", required=("modes", "mean", "weights"))
        bases[str(ds.attrs["variable"])] = POD.from_dataset(ds)
    return bases


def train_surrogate_file(train_nc: str, basis_ncs: Sequence[str], out_nc: str, name: str,
                         surrogate_cfg: Mapping[str, Any], study: str, config_section: Mapping[str, Any],
                         n_threads: int = 1, log_file: str | None = None) -> Path:
    """Fit surrogate ``name`` on the training snapshots projected onto the bases.

    BLAS and torch are limited to ``n_threads`` (the rule's threads): results are then
    reproducible bit for bit, and jobs running side by side do not oversubscribe the cores.
    """
    from threadpoolctl import threadpool_limits

    with stage_logger("train", log_file) as logger, threadpool_limits(n_threads):
        if surrogate_cfg["kind"] == "mlp":
            import torch
            torch.set_num_threads(n_threads)
        train_all = open_dataset(train_nc, stage="generate", required=("design", "status"))
        train = ok_samples(train_all)
        excluded = train_all.sizes["sample"] - train.sizes["sample"]
        if train.sizes["sample"] == 0:
            raise SurroflowError(f"{train_nc}: no training sample is ok; nothing to train on")
        if surrogate_cfg.get("basis", "global") == "local":
            return _train_local(train_nc, basis_ncs, out_nc, name, surrogate_cfg, study, config_section,
                                excluded, logger)
        bases = load_bases(basis_ncs)
        X, Y, scales = training_arrays(train, bases)
        kind = surrogate_cfg["kind"]
        params = dict(surrogate_cfg.get("params", {}))
        logger.info("%s (%s): %d training rows x %d inputs -> %d coefficients (%d flagged samples excluded)",
                    name, kind, X.shape[0], X.shape[1], Y.shape[1], excluded)
        # seeded by default: a surrogate with a random_state the config leaves unset gets 0
        import inspect
        if "random_state" in inspect.signature(surrogate_class(kind).__init__).parameters:
            params.setdefault("random_state", 0)
        try:
            model = make_surrogate(kind, **params)
        except TypeError as exc:
            raise SurroflowError(f"studies.{study}.surrogates.{name}.params: {exc}") from None
        t0 = time.perf_counter()
        model.fit(X, Y)
        fit_seconds = time.perf_counter() - t0
        resid = model.predict(X) - Y
        logger.info("%s: fitted in %.2f s; training RMS error of the scaled coefficients %.3e", name, fit_seconds,
                    float(np.sqrt(np.mean(resid ** 2))))
        td = time_dim_of(train)
        attrs = {
            **provenance("train", config_section, study),
            "surrogate": name, "fit_seconds": fit_seconds,
            "variables": list(bases), "n_modes": [int(b.n_modes_) for b in bases.values()],
            "input_names": [*map(str, train["parameter"].values), *([td] if td else [])],
            "coefficient_scales": [float(x) for x in scales],
            "n_train_rows": int(X.shape[0]), "n_excluded_samples": int(excluded),
        }
        save_surrogate(model, out_nc, attrs)
        return Path(out_nc)


def _train_local(train_nc: str, basis_ncs: Sequence[str], out_nc: str, name: str,
                 surrogate_cfg: Mapping[str, Any], study: str, config_section: Mapping[str, Any],
                 excluded: int, logger: Any) -> Path:
    """A local reduced model: the selector of the local bases plus one regressor per cluster."""
    import inspect

    from .reduced import train_local_model_file
    if len(basis_ncs) != 1:
        raise SurroflowError(f"studies.{study}.surrogates.{name}: a local model takes one local basis file")
    kind = surrogate_cfg["kind"]
    params = dict(surrogate_cfg.get("params", {}))
    if "random_state" in inspect.signature(surrogate_class(kind).__init__).parameters:
        params.setdefault("random_state", 0)
    t0 = time.perf_counter()
    variable = str(open_dataset(basis_ncs[0]).attrs["variable"])
    train_local_model_file(train_nc, basis_ncs[0], out_nc, kind, params, attrs={
        **provenance("train", config_section, study), "surrogate": name, "basis": "local",
        "variables": [variable], "n_excluded_samples": int(excluded)})
    logger.info("%s: local model (%s) trained in %.2f s (%d flagged samples excluded)", name, kind,
                time.perf_counter() - t0, excluded)
    return Path(out_nc)
