"""Figure plumbing shared by both evaluations: a headless pyplot, and every figure saved as
``<stem>.png`` with a ``<stem>.pdf`` beside it (the report shows the PNG, the PDF is for papers).

Image-like artists (``pcolormesh``, ``imshow``, ``tripcolor``, filled contours, scatter plots of
more than :data:`DENSE_POINTS` points) are rasterized in the PDF at :data:`PDF_DPI`; axes, text,
lines and sparse markers stay vector.  The x–t ``pcolormesh`` of a Burgers study has ~10⁵
quadrilaterals per figure: written as vector paths it dominated the evaluate job
(``bench/bench_figures.py`` measures both, ``bench/RESULTS_figures.md``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

#: dots per inch of the PNG and of the rasterized parts of the PDF
PNG_DPI = 120
PDF_DPI = 150
#: a scatter plot (or polygon collection) with more points than this is rasterized in the PDF
DENSE_POINTS = 1000


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use, never at import time)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _image_like(artist: Any) -> bool:
    from matplotlib.collections import PathCollection, PolyCollection, QuadMesh, TriMesh
    from matplotlib.contour import ContourSet
    from matplotlib.image import AxesImage
    if isinstance(artist, (QuadMesh, TriMesh, AxesImage, ContourSet)):
        return True
    if isinstance(artist, PathCollection):
        return len(artist.get_offsets()) > DENSE_POINTS
    if isinstance(artist, PolyCollection):       # flat tripcolor, fill_between of many polygons
        return len(artist.get_paths()) > DENSE_POINTS
    return False


def rasterize_images(fig: Any) -> int:
    """Mark the image-like artists of every axes of ``fig`` (colour bars included) rasterized;
    returns how many were marked."""
    n = 0
    for ax in fig.axes:
        for artist in (*ax.collections, *ax.images):
            if _image_like(artist):
                artist.set_rasterized(True)
                n += 1
    return n


def save(fig: Any, png: str | Path) -> list[Path]:
    """Save ``fig`` as ``png`` and as the PDF beside it (image-like artists rasterized,
    :func:`rasterize_images`), then close it; returns both paths."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    rasterize_images(fig)
    fig.savefig(png, dpi=PNG_DPI, bbox_inches="tight")
    pdf = png.with_suffix(".pdf")
    fig.savefig(pdf, dpi=PDF_DPI, bbox_inches="tight")
    pyplot().close(fig)
    return [png, pdf]


def colors(names: Any) -> dict[str, Any]:
    """One tab10 colour per name, stable across the figures of one evaluation."""
    cmap = pyplot().get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


__all__ = ["PNG_DPI", "PDF_DPI", "DENSE_POINTS", "pyplot", "rasterize_images", "save", "colors"]
