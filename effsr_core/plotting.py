"""The one way the project draws a PNG: matplotlib's file-only backend, imported when a picture is asked for (a run
that draws nothing never imports matplotlib), and a figure written atomically (no half-written picture is left)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from effsr_core.checkpoints import atomic_write


def pyplot():
    """matplotlib's ``pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    return plt


@contextlib.contextmanager
def figure(png_path: str | Path, *args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """``plt.subplots(*args, **kwargs)`` as ``(fig, axes)``; when the block ends normally the figure is laid out and
    written to ``png_path`` atomically, and it is always closed."""
    plt = pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        with atomic_write(png_path) as f:
            fig.savefig(f, format='png')
    finally:
        plt.close(fig)
