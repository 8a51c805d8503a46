"""Dynamical-systems numerics: Lyapunov exponents, data assimilation and model-error discovery.

* Lyapunov exponents (Benettin/QR on the tangent dynamics); :func:`lyapunov_attrs` gives the
  Lyapunov attributes that the generate stage attaches to the data of a chaotic simulator.
* Ensemble Kalman filters (:mod:`.assimilation`): :func:`assimilate` cycles a stochastic EnKF or
  an LETKF with Gaspari-Cohn localisation and multiplicative inflation on any ensemble stepper.
* Model-error discovery (:mod:`.model_error`): a library of candidate terms on a periodic 1-D
  grid (:func:`term_library`), sequentially thresholded ridge regression with a block bootstrap
  (:func:`fit_sparse`), the regression data of a filter run (:func:`model_error_data`,
  :func:`discover_model_error`), the corrected model (:func:`corrected_terms`,
  :func:`corrected_step`), and passes of filter, regression and correction to a fixed point
  (:func:`refine_model_error`; what a model-error study should use).

Nothing here imports :mod:`surroflow.simulators`: these work on plain callables and arrays.
"""
from __future__ import annotations

from .assimilation import (AssimilationResult, assimilate, climatological_ensemble, gaspari_cohn, observe,
                           periodic_distance, rmse)
from .attrs import is_chaotic, lyapunov_attrs, lyapunov_exponent
from .lyapunov import (LyapunovResult, TangentSystem, kaplan_yorke_dimension,
                       leading_lyapunov_exponent, lyapunov_spectrum)
from .model_error import (DEFAULT_TERMS, TERMS, Refinement, SparseFit, corrected_step, corrected_terms,
                          derivatives, discover_model_error, evaluate_terms, fit_sparse, model_error_data,
                          refine_model_error, stlsq, term_library)

__all__ = ["DEFAULT_TERMS", "TERMS", "AssimilationResult", "LyapunovResult", "Refinement", "SparseFit",
           "TangentSystem", "assimilate", "climatological_ensemble", "corrected_step", "corrected_terms", "derivatives",
           "discover_model_error", "evaluate_terms", "fit_sparse", "gaspari_cohn", "is_chaotic",
           "kaplan_yorke_dimension", "leading_lyapunov_exponent", "lyapunov_attrs", "lyapunov_exponent",
           "lyapunov_spectrum", "model_error_data", "observe", "periodic_distance", "refine_model_error", "rmse", "stlsq",
           "term_library"]
