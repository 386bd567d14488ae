"""Sliders fall back to static figures; image conversions round-trip."""

import numpy as np
import pytest
import torch

from course.images import cat, from_uint8, to_display
from course.widgets import int_slider, widgets_live


def test_static_fallback_draws_each_value(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_NO_WIDGETS", "1")
    assert not widgets_live()
    drawn = []
    assert int_slider(drawn.append, name="t", min=0, max=10, value=3, static_values=[1, 7]) is None
    assert drawn == [1, 7]
    assert "static figure" in capsys.readouterr().out


def test_live_slider_is_an_ipywidget():
    ipywidgets = pytest.importorskip("ipywidgets")
    drawn = []

    def draw(t):
        drawn.append(t)

    widget = int_slider(draw, name="t", min=0, max=10, value=3, static_values=[1], live=True)
    assert isinstance(widget, ipywidgets.interactive)
    assert widget.children[0].value == 3 and widget.children[0].max == 10
    widget.children[0].value = 8  # moving the slider redraws
    assert drawn[-1] == 8


def test_slider_rejects_a_value_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        int_slider(print, name="t", min=0, max=10, value=11, static_values=[1])


def test_image_round_trip():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 14
    x = from_uint8(image)
    assert x.shape == (3, 2, 3) and x.dtype == torch.float32
    assert np.allclose(to_display(x) * 255, image, atol=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        from_uint8(image.astype(np.float32))


def test_cat_is_offline_and_sized():
    assert cat().shape == (3, 300, 451)
    small = cat(size=32)
    assert small.shape == (3, 32, 32) and small.min() >= -1.01 and small.max() <= 1.01
