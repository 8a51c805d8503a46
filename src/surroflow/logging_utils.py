"""Logging for stages: to the rule's log file and to stderr; progress lines of long loops."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from typing import Callable, Iterator

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


# --------------------------------------------------------------------------- progress
def format_duration(seconds: float) -> str:
    """``5 s``, ``2 min 05 s``, ``1 h 02 min`` (rounded to the second)."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_rate(rate: float) -> str:
    """A rate to two or three significant digits: ``0.8``, ``12.3``, ``512``."""
    if rate >= 100:
        return f"{rate:.0f}"
    return f"{rate:.1f}" if rate >= 1 else f"{rate:.2g}"


class Progress:
    """How far a loop of ``total`` steps is, how fast it goes and when it ends, as log lines::

        burgers train batch 0002: 12/16 samples (75%), 0.8 samples/s, ETA 5 s, 1 flagged

    Call :meth:`update` after each step (or group of steps).  A line is logged when at least
    ``every_s`` seconds or ``every_fraction`` of ``total`` have passed since the previous one
    (``None`` turns that trigger off), and always at the last step.  The rate is the mean since
    the reporter was made (``clock``, injectable for tests); the ETA is the steps left at that
    rate.  Below ``level`` on ``logger`` it only counts.
    """

    def __init__(self, total: int, label: str, *, unit: str = "steps", logger: logging.Logger | None = None,
                 every_s: float | None = 2.0, every_fraction: float | None = 0.1,
                 level: int = logging.INFO, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.unit = max(0, int(total)), label, unit
        self.logger = logger if logger is not None else logging.getLogger("surroflow")
        self.every_s, self.level, self.clock = every_s, level, clock
        self._every_n = (max(1, math.ceil(every_fraction * self.total)) if every_fraction else None)
        self.done = 0
        self.start = clock()
        self._last_n, self._last_t, self._ended = 0, self.start, False

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    @property
    def rate(self) -> float | None:
        """Steps per second so far (``None`` before a step or time has passed)."""
        dt = self.elapsed
        return self.done / dt if self.done and dt > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (0 when done; ``None`` when the rate is unknown)."""
        if self.done >= self.total:
            return 0.0
        rate = self.rate
        return (self.total - self.done) / rate if rate else None

    def line(self, note: str = "") -> str:
        """The progress line as it stands."""
        pct = int(100 * self.done / self.total) if self.total else 100
        rate, eta = self.rate, self.eta
        text = (f"{self.label}: {self.done}/{self.total} {self.unit} ({pct}%), "
                f"{'?' if rate is None else format_rate(rate)} {self.unit}/s, "
                f"ETA {'?' if eta is None else format_duration(eta)}")
        return f"{text}, {note}" if note else text

    def due(self) -> bool:
        """Whether a line is owed now (the rate limit of :meth:`update`)."""
        if self.done >= self.total:
            return not self._ended
        if self.done == self._last_n:
            return False
        if self._every_n is not None and self.done - self._last_n >= self._every_n:
            return True
        return self.every_s is not None and self.clock() - self._last_t >= self.every_s

    def update(self, n: int = 1, note: str = "") -> str | None:
        """Count ``n`` more steps done; log the line when one is due and return it (else ``None``)."""
        self.done = min(self.total, self.done + int(n))
        if not self.logger.isEnabledFor(self.level) or not self.due():
            return None
        self._last_n, self._last_t, self._ended = self.done, self.clock(), self.done >= self.total
        text = self.line(note)
        self.logger.log(self.level, "%s", text)
        return text
