"""Logging for stages: to the rule's log file and to stderr."""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from . import SurroflowError


@contextlib.contextmanager
def stage_logger(name: str | None = None, log_file: str | None = None) -> Iterator[logging.Logger]:
    """Send the package's log records (``surroflow.*``, or ``surroflow.<name>``) to stderr and
    ``log_file`` for the duration of a stage."""
    logger = logging.getLogger("surroflow" if not name else f"surroflow.{name}")
    logger.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="a"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    try:
        yield logger
    except Exception as exc:
        logger.error("%s", exc)
        raise
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """For rule scripts: a SurroflowError ends the job with its one-line message and exit
    status 1, without a Python traceback (the message is in the rule's log as well)."""
    try:
        yield
    except SurroflowError as exc:
        print(f"surroflow: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
