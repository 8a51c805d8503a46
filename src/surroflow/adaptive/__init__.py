"""Adaptive sampling: an error indicator chooses where the next high-fidelity runs go.

* :mod:`.indicators` -- the indicators (one interface, a registry), the stopping estimate and
  the batch selection;
* :mod:`.schedule` -- what a round depends on (its runs so far, how many it may add);
* :mod:`.rounds` -- one round, independent of files: fit, estimate, decide, select;
* :mod:`.files` -- what the stages ``adapt_round`` and ``evaluate_adaptive`` read and write:
  round artifacts, the one-shot curve of the same budget, the curve and summary tables, figures.

The workflow runs each round as files under ``results/<study>/rounds/<r>/`` (README: Adaptive
sampling), so a killed run resumes at the round it was in.
"""
