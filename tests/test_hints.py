"""course.hints: every exercise of every lesson has three hints (idea, formula, code) in both languages."""

from __future__ import annotations

import re

import pytest

from course.hints import LEVELS, all_hints, hint_text
from course.lessons import available_lessons
from course.paths import repo_root


def exercises() -> list[str]:
    """The name of every exercise: ``def my_<name>(`` in a solution region of a lesson's source."""
    names = []
    for lesson in available_lessons():
        source = (repo_root() / "lessons" / f"{lesson.stem}.py").read_text(encoding="utf-8")
        names += re.findall(r"^def my_(\w+)\(", source, re.M)
    return names


def test_the_lessons_have_exercises():
    assert len(exercises()) >= 15


@pytest.mark.parametrize("name", exercises())
def test_every_exercise_has_three_hints_in_both_languages(name):
    hints = all_hints()
    assert name in hints, f"course.checks.*.HINTS has no entry for the exercise my_{name}"
    assert len(hints[name]) == LEVELS
    for lang in ("en", "fr"):
        texts = [level[lang].strip() for level in hints[name]]
        assert all(texts) and len(set(texts)) == LEVELS, f"{name} [{lang}]: three distinct, non-empty levels"


def test_hints_follow_the_language_and_point_to_the_next_level(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "fr")
    assert hint_text("ddim_step").startswith("💡 ddim_step, indice 1/3 (l'idée) : devinez")
    assert "hint('ddim_step', 2) donne la formule" in hint_text("ddim_step")
    monkeypatch.setenv("COURSE_LANG", "en")
    last = hint_text("ddim_step", 3)
    assert last.startswith("💡 ddim_step, hint 3/3 (the code):\n   x0_hat =") and "still stuck" not in last


def test_unknown_exercises_and_levels_are_refused(monkeypatch):
    monkeypatch.setenv("COURSE_LANG", "en")
    with pytest.raises(ValueError, match="no hints for 'ddim'"):
        hint_text("ddim")
    with pytest.raises(ValueError, match="level must be 1 .* got 4"):
        hint_text("ddim_step", 4)
