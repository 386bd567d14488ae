"""Figures shared by the lessons: image strips and grids with readable labels."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from course.images import to_display
from course.language import tr
from course.profiles import current_profile


def figure(*args, **kwargs):
    """``plt.subplots`` with the active profile's dpi (smaller in CI, so notebooks stay light)."""
    kwargs.setdefault("dpi", current_profile().figure_dpi)
    return plt.subplots(*args, **kwargs)


def show_strip(
    images: torch.Tensor | Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    size: float = 1.6,
):
    """Show images (each (C, H, W) in [−1, 1]) side by side with one title each.

    Returns nothing, so that a call ending a notebook cell does not display the figure twice.
    """
    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    fig, axes = figure(1, len(images), figsize=(size * len(images), size * 1.15), squeeze=False)
    for i, (ax, img) in enumerate(zip(axes[0], images)):
        ax.imshow(to_display(img), interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()


def show_grid(
    images: torch.Tensor | Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.6,
    wrap: int = 22,
    fontsize: int = 7,
    suptitle: str | None = None,
):
    """Show images (each (C, H, W) in [−1, 1]) in rows of ``ncols``, titles wrapped at ``wrap`` characters."""
    import textwrap

    images = list(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    lines = max((len(textwrap.wrap(t, wrap)) for t in titles), default=0) if titles else 0
    fig, axes = figure(nrows, ncols, figsize=(size * ncols, (size + 0.14 * lines) * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(to_display(images[i]), interpolation="nearest")
            if titles is not None:
                ax.set_title("\n".join(textwrap.wrap(titles[i], wrap)), fontsize=fontsize)
    if suptitle:
        fig.suptitle(suptitle, fontsize=fontsize + 2)
    fig.tight_layout()


class LiveLoss:
    """An ``on_log`` callback for :func:`course.train.train` that redraws the loss curve in place.

    In a notebook the figure is updated under the cell as training runs (a display handle, so the
    progress bar is left alone); outside a notebook it does nothing until :meth:`show`.
    """

    def __init__(self, title: str | None = None, every: int = 1):
        """``title``: the figure's title (default "training loss", in the edition's language)."""
        title = title if title is not None else tr(en="training loss", fr="perte d'entraînement")
        self.title, self.every, self.calls = title, every, 0
        self.fig, self.ax = figure(figsize=(6, 2.8))
        plt.close(self.fig)  # shown through the display handle only
        self.handle = None
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                self.handle = display(self.fig, display_id=True)
        except ImportError:
            pass

    def draw(self, history) -> None:
        self.ax.clear()
        self.ax.plot(history.steps, history.losses)
        self.ax.set(xlabel=tr(en="step", fr="pas"), ylabel=tr(en="loss (smoothed)", fr="perte (lissée)"), title=self.title)
        self.fig.tight_layout()

    def __call__(self, history) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            self.draw(history)
            if self.handle is not None:
                self.handle.update(self.fig)

    def show(self, history) -> None:
        """Draw the final curve (call once training is over)."""
        self.draw(history)
        if self.handle is not None:
            self.handle.update(self.fig)
