"""Evaluation of both tasks, on one set of plumbing.

* :mod:`.data`: the generate data an evaluation reads (ok samples, flagged counts) and the
  costs measured upstream (NaN when not measured, never 0);
* :mod:`.timing`: measured query times (warm-up call untimed), speed-up, break-even queries;
* :mod:`.summary`: ``summary.csv`` through :func:`surroflow.io.write_table` and the same rows as
  ``summary.html`` for the report;
* :mod:`.figures`: headless pyplot, PNG + PDF;
* :mod:`.parametric` (+ :mod:`.parametric_figures`): reduced models on the test design, the
  error split of :meth:`surroflow.surrogates.reduced.ReducedModel.error_split`;
* :mod:`.forecast` (+ :mod:`.forecast_metrics`, :mod:`.forecast_figures`): forecasters in
  Lyapunov times against persistence and climatology.

Submodules are imported on use (matplotlib, torch and scikit-learn load only when needed).
"""
