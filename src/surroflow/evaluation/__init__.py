"""Evaluation: error split, timing and cost accounting, figures."""
