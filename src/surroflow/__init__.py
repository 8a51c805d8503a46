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


def __getattr__(name: str) -> object:
    """The Python API (:mod:`surroflow.api`) at the top of the package, loaded on first use
    (PEP 562), so that the modules below, which import ``SurroflowError`` from here, do not."""
    if name == "load_model":
        from .api import load_model
        return load_model
    raise AttributeError(f"module 'surroflow' has no attribute {name!r}")


__all__ = ["__version__", "SurroflowWarning", "SurroflowError", "load_model"]
