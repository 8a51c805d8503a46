"""Logging for stages: to the rule's log file and to stderr."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

from . import SurroflowError
from .io import hdf5_damaged, os_error_message


class _LogFileHandler(logging.FileHandler):
    """A log file that, when it cannot be written (disk full), says so once on stderr instead of
    printing a traceback per record; the records still reach stderr."""

    _warned = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if not self._warned:
            self._warned = True
            exc = sys.exc_info()[1]
            why = os_error_message(exc) if exc is not None else None
            print(f"surroflow: warning: cannot write the log file {self.baseFilename} "
                  f"({why or exc}); logging to stderr only", file=sys.stderr)


@contextlib.contextmanager
def stage_logger(name: str | None = None, log_file: str | None = None) -> Iterator[logging.Logger]:
    """Send the package's log records (``surroflow.*``, or ``surroflow.<name>``) to stderr and
    ``log_file`` for the duration of a stage."""
    logger = logging.getLogger("surroflow" if not name else f"surroflow.{name}")
    logger.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(_LogFileHandler(log_file, mode="a"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    try:
        yield logger
    except Exception as exc:
        logger.error("%s", exc if isinstance(exc, SurroflowError) else (os_error_message(exc) or exc))
        raise
    finally:
        for h in handlers:
            logger.removeHandler(h)
            with contextlib.suppress(OSError):   # a log file on a full disk: already reported
                h.close()


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """For rule scripts: a SurroflowError ends the job with its one-line message and exit
    status 1, without a Python traceback (the message is in the rule's log as well); so does an
    operating-system error of a file that escaped the stage (a full disk, a folder or log file
    that cannot be written: :func:`surroflow.io.os_error_message`, naming the file)."""
    try:
        yield
    except SurroflowError as exc:
        _fail(str(exc))
    except Exception as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        _fail(message)


def _fail(message: str) -> None:
    print(f"surroflow: error: {message}", file=sys.stderr)
    if hdf5_damaged():
        # a NetCDF write ran out of space: freeing HDF5's objects would crash the process with
        # SIGSEGV (and print tracebacks from their destructors); end it now, its message out
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(1)
    raise SystemExit(1) from None
