"""Interactive figures with a static fallback.

A slider needs a live Jupyter front end. When the notebook is executed without one (CI, the
build that saves the solution editions, a viewer such as GitHub), the same function is drawn at
a few fixed values instead, so every edition shows a figure. Executors announce themselves by
setting ``COURSE_NO_WIDGETS=1``.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

from course.language import tr

NO_WIDGETS_ENV = "COURSE_NO_WIDGETS"


def widgets_live() -> bool:
    """True inside a Jupyter kernel with ipywidgets, unless ``COURSE_NO_WIDGETS`` is set."""
    if os.environ.get(NO_WIDGETS_ENV, "").strip() not in ("", "0"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def int_slider(
    draw: Callable[[int], None],
    *,
    name: str,
    min: int,
    max: int,
    value: int,
    static_values: Sequence[int],
    static_draw: Callable[[Sequence[int]], None] | None = None,
    live: bool | None = None,
):
    """An integer slider driving ``draw(v)``; without live widgets, a static figure instead.

    ``static_draw(values)`` draws the fallback (default: ``draw`` called at each static value).
    Returns the ipywidgets object when live, else ``None``.
    """
    if not min <= value <= max:
        raise ValueError(f"value must be in [{min}, {max}], got {value}")
    if live is None:
        live = widgets_live()
    if live:
        import ipywidgets

        control = ipywidgets.IntSlider(value=value, min=min, max=max, description=name, continuous_update=False)
        return ipywidgets.interactive(draw, **{name: control})
    print(tr(en=f"(static figure: the {name} slider needs a live Jupyter kernel with ipywidgets)",
             fr=f"(figure fixe : le curseur {name} demande un noyau Jupyter actif, avec ipywidgets)"))
    if static_draw is not None:
        static_draw(static_values)
    else:
        for v in static_values:
            draw(v)
    return None
