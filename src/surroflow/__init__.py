"""surroflow: from an expensive simulator to a fast, honestly evaluated surrogate.

The package holds all the science and logic; the Snakemake workflow in ``workflow/``
only calls functions from here.
"""
from __future__ import annotations

__version__ = "0.1.0"


class SurroflowWarning(UserWarning):
    """Warnings emitted by surroflow itself (turned into errors in the test suite)."""


class SurroflowError(Exception):
    """An error with a message meant for the user: it names the file, key or sample at fault."""


__all__ = ["__version__", "SurroflowWarning", "SurroflowError"]
