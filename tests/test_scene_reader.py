"""The scene reader: its labels, its reading of logits, and the shipped weights on fresh renders."""

import numpy as np
import pytest
import torch

from course.paths import data_dir
from course.scene_reader import CELLS, SLOT_SHAPES, Layout, SceneReader, accuracy, layout_labels, random_layout, read, reader_loss, render_layouts
from course.scenes import Obj


def test_layouts_and_labels():
    rng = np.random.default_rng(0)
    layouts = [random_layout(rng) for _ in range(300)]
    assert {len(l.objects) for l in layouts} == {0, 1, 2, 3, 4}
    layout = Layout("black", (Obj("star", "red", "small", (0, 2)), Obj("circle", "grey", "large", (2, 0))))
    labels = layout_labels(layout)
    assert labels.shape == (CELLS, 3)
    assert labels[2].tolist() == [SLOT_SHAPES.index("star"), 0, 0] and labels[6].tolist() == [SLOT_SHAPES.index("circle"), 7, 1]
    assert labels[4].tolist() == [0, -1, -1]  # an empty cell: colour and size do not apply
    with pytest.raises(ValueError, match="distinct cells"):
        Layout("white", (Obj("star", "red", "small", (0, 0)), Obj("heart", "red", "small", (0, 0))))
    with pytest.raises(ValueError, match="unknown background 'blue'"):
        Layout("blue", ())


def test_read_turns_cell_logits_into_objects():
    class Fixed(SceneReader):
        def forward(self, x):
            shape = torch.zeros(len(x), CELLS, len(SLOT_SHAPES))
            shape[:, :, 0] = 1  # every cell empty…
            shape[:, 5, SLOT_SHAPES.index("heart")] = 2  # …but the right-hand one, a heart
            colour, size = torch.zeros(len(x), CELLS, 8), torch.zeros(len(x), CELLS, 2)
            colour[:, 5, 3], size[:, 5, 1] = 1, 1
            return {"shape": shape, "colour": colour, "size": size}

    assert read(torch.zeros(2, 3, 64, 64), Fixed()) == [(Obj("heart", "yellow", "large", (1, 2)),)] * 2


def test_loss_ignores_colour_and_size_of_empty_cells():
    model = SceneReader()
    images, labels = render_layouts(4, seed=0)
    logits = model(images.float() / 127.5 - 1)
    assert {k: tuple(v.shape) for k, v in logits.items()} == {"shape": (4, 9, 9), "colour": (4, 9, 8), "size": (4, 9, 2)}
    loss = reader_loss(logits, labels)
    assert torch.isfinite(loss) and loss > 0


@pytest.mark.skipif(not (data_dir() / "scene_reader.safetensors").exists(), reason="scene reader not trained yet")
def test_shipped_reader_reads_fresh_layouts():
    from course.scene_reader import load_reader

    images, labels = render_layouts(400, seed=4321)  # not the training seed, nor the manifest's test seed
    table = accuracy(load_reader(), images.float() / 127.5 - 1, labels)
    assert table["cell_shape"] >= 0.995 and table["colour"] >= 0.995 and table["size"] >= 0.98, table
    assert table["layout_exact"] >= 0.95, table
