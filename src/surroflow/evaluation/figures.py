"""Figure plumbing shared by both evaluations: a headless pyplot, and every figure saved as
``<stem>.png`` with a ``<stem>.pdf`` beside it (the report shows the PNG, the PDF is for papers)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use, never at import time)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def save(fig: Any, png: str | Path) -> list[Path]:
    """Save ``fig`` as ``png`` and as the PDF beside it, then close it; returns both paths."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    pdf = png.with_suffix(".pdf")
    fig.savefig(pdf, bbox_inches="tight")
    pyplot().close(fig)
    return [png, pdf]


def colors(names: Any) -> dict[str, Any]:
    """One tab10 colour per name, stable across the figures of one evaluation."""
    cmap = pyplot().get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


__all__ = ["pyplot", "save", "colors"]
