"""The bag-of-words test (course.text_binding): the distance, the colour swap, and what it measures on the shipped CLIP."""

import torch

from course import geneval
from course.text_binding import measure, relative_distance, swap_tasks, swapped_prompt


def test_relative_distance_is_zero_for_the_same_states_and_restricted_to_where():
    s = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    assert float(relative_distance(s, s, torch.ones(2, 5))) == 0.0
    other = s.clone()
    other[:, 3:] += 10  # a change only where `where` is 0
    where = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]])
    assert float(relative_distance(s, other, where)) == 0.0
    assert float(relative_distance(s, other, 1 - where)) > 1.0
    assert torch.isclose(relative_distance(s, torch.zeros_like(s), where), torch.tensor(1.0))


def test_swapped_prompt_exchanges_the_colours_in_both_sets_and_languages():
    for kind in ("binding", "pair"):
        for task in swap_tasks(4, kind):
            a, b = task.scene.objects
            swap = swapped_prompt(task)
            assert swap != task.prompt, task.prompt
            if task.lang == "en":  # the same words, in another order (French colours agree with their noun)
                assert sorted(swap.split()) == sorted(task.prompt.split()), (task.prompt, swap)
    task = next(t for t in swap_tasks(8, "binding") if t.lang == "fr")
    a, b = task.scene.objects
    assert swapped_prompt(task).startswith(task.prompt.split()[0])  # the same first shape, now in the other colour


def test_the_shipped_clip_padding_is_a_bag_of_words():
    """What lesson 10 says: at the padding a colour swap moves the states far less than another prompt does."""
    for row in measure(n=8):
        assert row["swap"]["padding"] < 0.05 < row["other_prompt"]["padding"], row
        assert row["swap"]["words"] > 0.3, row  # at the words, the colour words changed places


def test_verdict_and_recorded():
    task = geneval.tasks(1, sets=("binding",))[0]
    a, b = task.scene.objects
    assert geneval.verdict(task, (a, b)) and not geneval.verdict(task, (a,))
    table = geneval.recorded()
    assert {"renders", "shipped"} <= set(table) and "categories" in table["shipped"]
