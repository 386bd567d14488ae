"""Condition images (course.conditions), their adherence measures (course.controlnet_train) and the bad inputs of
`python -m course generate --control` and of the pipeline: one line each, before any model loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from course import __main__ as cli
from course.conditions import KINDS, canny, condition, layout_mask, read_control, scribble, to_condition
from course.control_eval import edge_f1, mask_iou
from course.render import render
from course.scenes import single


def square_render(colour="yellow", background="white"):
    return render(single("square", colour, "centre", "large", background), 64)


def contour(mask):
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask)


def test_canny_finds_a_yellow_square_on_beige_that_grey_levels_hide():
    from skimage.color import rgb2gray
    from skimage.feature import canny as grey_canny

    image = square_render("yellow", "beige")
    edges = canny(image)
    assert edges.sum() > 50 and edge_f1(edges, contour(layout_mask(image))) > 0.9  # the square's outline, nothing else
    assert not grey_canny(rgb2gray(image), sigma=1.0).any()  # why every channel: in grey levels the square vanishes
    assert not canny(np.full((64, 64, 3), 200, np.uint8)).any()  # a flat image has no edges


@pytest.mark.parametrize("background", ["white", "black", "beige"])
def test_the_layout_mask_is_the_silhouette(background):
    mask = layout_mask(square_render("grey", background))
    ys, xs = np.nonzero(mask)
    assert 14 <= ys.max() - ys.min() + 1 <= 20 and 14 <= xs.max() - xs.min() + 1 <= 20  # the large square, ≈ 16 px
    assert abs(ys.mean() - 31.5) < 1.5 and abs(xs.mean() - 31.5) < 1.5 and mask.sum() > 0.8 * 16 * 16


def test_a_scribble_is_a_thick_jittered_outline_of_the_silhouette():
    image = square_render("blue")
    a, b = scribble(image, np.random.default_rng(0)), scribble(image, np.random.default_rng(1))
    outline = contour(layout_mask(image))
    assert not np.array_equal(a, b)  # jittered
    assert edge_f1(a, canny(image), tolerance=3) > 0.6 and a.sum() > 2 * outline.sum()  # near the outline, thicker


def test_to_condition_is_white_on_black_in_three_channels():
    c = to_condition(np.eye(64, dtype=bool))
    assert c.shape == (1, 3, 64, 64) and c.dtype == torch.float32 and set(c.unique().tolist()) == {0.0, 1.0}


def test_edge_f1_and_iou():
    a = np.zeros((32, 32), bool)
    a[10, 5:25] = True
    assert edge_f1(a, a) == 1.0 and edge_f1(np.roll(a, 1, 0), a) == 1.0  # one pixel off: within the tolerance
    assert edge_f1(np.roll(a, 5, 0), a) == 0.0 and edge_f1(np.zeros_like(a), a) == 0.0
    assert mask_iou(a, a) == 1.0 and mask_iou(a, np.roll(a, 1, 0)) == 0.0


def test_unknown_kind_lists_the_names():
    with pytest.raises(ValueError, match="unknown control kind 'depth': choose one of canny, scribble, mask"):
        condition(square_render(), "depth")
    from course.recipes import CONTROL_KINDS

    assert cli.CONTROL_KINDS == KINDS == CONTROL_KINDS


def test_read_control_resizes_and_detects_pictures(tmp_path):
    edges = np.zeros((256, 256), np.uint8)
    edges[64:192, 64] = edges[64:192, 191] = 255
    Image.fromarray(edges).save(tmp_path / "edges.png")
    notes = []
    c = read_control(tmp_path / "edges.png", "canny", 64, notes)
    assert c.shape == (1, 3, 64, 64) and c.sum() > 0 and "resized from 256×256 to 64×64" in notes[0]
    Image.fromarray(square_render("green", "beige")).save(tmp_path / "picture.png")
    notes = []
    c = read_control(tmp_path / "picture.png", "canny", 64, notes)
    assert "looks like a picture" in notes[0] and torch.equal(c, to_condition(canny(square_render("green", "beige"))))
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "black.png")
    notes = []
    assert not read_control(tmp_path / "black.png", "canny", 64, notes).any() and "empty" in notes[0]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read the control image"):
        read_control(tmp_path / "bad.png", "canny", 64)


@pytest.fixture
def no_models(monkeypatch):
    from course import pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(pipeline.TextToImagePipeline, "__init__", refuse)


@pytest.mark.parametrize("extra, message", [
    (["--control", "{tmp}/none.png"], "--control '{tmp}/none.png': no such file"),
    (["--control", "{tmp}/e.png", "--control-kind", "depth"], "unknown --control-kind 'depth': choose one of canny, scribble, mask"),
    (["--control", "{tmp}/e.png", "--control-scale", "-1"], "--control-scale must be a number ≥ 0"),
    (["--control", "{tmp}/e.png", "--control-scale", "nan"], "--control-scale must be a number ≥ 0"),
    (["--control-scale", "0.5"], "--control-kind and --control-scale need --control FILE"),
])
def test_bad_control_arguments_are_one_line_before_any_model(tmp_path, capsys, no_models, extra, message):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "e.png")
    args = ["generate", "un carré bleu", "-o", str(tmp_path / "out.png"), *[e.format(tmp=tmp_path) for e in extra]]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "out.png").exists()


def test_a_kind_that_is_not_shipped_says_how_to_train_it(tmp_path, capsys, no_models):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "e.png")
    assert cli.main(["generate", "un carré bleu", "-o", str(tmp_path / "o.png"), "--control", str(tmp_path / "e.png"), "--control-kind", "mask"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m course.controlnet_train train --kind mask --ship" in err


def test_the_command_draws_with_control_and_warns_on_an_empty_map(tmp_path):
    import subprocess
    import sys

    edges = np.zeros((128, 128), np.uint8)
    edges[30:90, 30] = edges[30:90, 89] = edges[30, 30:90] = edges[89, 30:90] = 255
    Image.fromarray(edges).save(tmp_path / "edges.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "black.png")
    out = tmp_path / "out.png"
    run = lambda control: subprocess.run([sys.executable, "-m", "course", "generate", "un grand carré bleu au centre", "--steps", "3",  # noqa: E731
                                          "--control", str(tmp_path / control), "-o", str(out)], capture_output=True, text=True, timeout=180)
    result = run("edges.png")
    assert result.returncode == 0, result.stderr
    assert out.exists() and "canny control ×1" in result.stdout and "Traceback" not in result.stderr
    assert result.stderr.count("note: control image resized from 128×128 to 64×64") == 1
    result = run("black.png")
    assert result.returncode == 0 and result.stderr.startswith("warning: the canny map is empty") and result.stderr.count("\n") == 1
