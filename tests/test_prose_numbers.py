"""Prose true in every profile: every percentage a lesson's text quotes has a source a test can see.

A percentage in a markdown cell must be one of:
- read from a shipped measurement by the build (``{{file.json:key|pct1}}``, :func:`course.build.fill_numbers`):
  then it is right by construction, and a changed JSON makes the notebooks stale (``test_generated_files_are_fresh``);
- printed by the same edition's executed cells (the solutions run in the ``cpu`` profile): a retrained model that
  prints another number fails this test until the prose follows;
- in a paragraph that says where it was measured: a profile (« profil `cpu` », "the `smoke` profile"), the
  benchmark script that recorded it (`benchmarks/ldm_recipes.py`, with its results file) or a cited paper
  ("Ho et al.", "(2022)");
- a constant of the course listed in :data:`CONSTANTS` with its source.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from course.build import NUMBER, fill_numbers, read_source
from course.lessons import available_lessons
from course.paths import repo_root

PERCENT = re.compile(r"(?<![\w.,$])(\d+(?:[.,]\d+)?)\s?%")
SAYS_WHERE = re.compile(r"`(?:cpu|smoke|gpu)`|\bprofil|et al\.|\([^()]*\b(?:19|20)\d\d[a-z]?\)|benchmarks/\w+\.py")

# (lesson stem, number as written in English) → where it comes from
CONSTANTS = {
    ("01_forward_process", "0.6"): "√ᾱ_T ≈ 0.006 of the linear schedule, printed as ᾱ_T by the NBVAL-checked cell",
    ("06_schedulers", "0.2"): "Heun's latent error in data/sampler_race_ldm.json, ours 6.964 against diffusers' 6.952: 0.17 %",
    ("05_latent_diffusion", "85"): "the single-object target set for lessons 00–07 (the course's issue): shapes right",
    ("05_latent_diffusion", "80"): "the single-object target set for lessons 00–07 (the course's issue): prompts fully right",
    ("07_guidance_pipeline", "30"): "the share of multi-object scenes in the training mix, course.recipes",
    ("10_composition", "80"): "the course's target for two-object prompts (two objects right ≥ 80 %), set with lesson 10 (4458803)",
    ("11_new_word", "80"): "the course's target for lesson 11's better method (held-out success ≥ 80 %), set with lesson 11's issue",
}


def printed_percentages(lesson, lang: str) -> set[str]:
    """Every percentage the executed solution edition shows (streams, plain text, markdown results), as "92.2"."""
    nb = nbformat.read(repo_root() / "solutions" / lang / f"{lesson.stem}.ipynb", as_version=4)
    found = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for text in (out.get("text", ""), data.get("text/plain", ""), data.get("text/markdown", "")):
                text = text if isinstance(text, str) else "".join(text)
                found |= {m.group(1).replace(",", ".") for m in PERCENT.finditer(text)}
    return found


def unsourced(lesson, lang: str) -> list[str]:
    shown = printed_percentages(lesson, lang)
    problems = []
    for i, cell in enumerate(read_source(lesson).cells):
        if cell.cell_type != "markdown" or cell.metadata.get("lang") not in (None, lang):
            continue
        fill_numbers(cell.source, lang, f"{lesson.stem}, cell {i + 1}")  # every {{file.json:key|fmt}} resolves
        for paragraph in re.split(r"\n\s*\n", NUMBER.sub("⟨number read from data/⟩", cell.source)):
            if SAYS_WHERE.search(paragraph):
                continue
            for m in PERCENT.finditer(paragraph):
                number = m.group(1).replace(",", ".")
                if number not in shown and (lesson.stem, number) not in CONSTANTS:
                    context = paragraph[max(0, m.start() - 60) : m.end() + 10].replace("\n", " ")
                    problems.append(f"cell {i + 1}: {m.group(0)!r} in …{context}…")
    return problems


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("lesson", available_lessons(), ids=lambda lesson: lesson.stem)
def test_every_percentage_in_the_prose_has_a_source(lesson, lang):
    problems = unsourced(lesson, lang)
    assert not problems, (
        f"{lesson.stem} [{lang}]: percentages neither printed by the lesson, nor read from data/*.json "
        "({{file.json:key|pct1}}), nor said where they were measured:\n" + "\n".join(problems)
    )


def test_the_detector_sees_an_unsourced_number_and_spares_a_sourced_one():
    assert PERCENT.findall("92 % of shapes, 91,8 % en français, not 2%x") == ["92", "91,8", "2"]
    assert SAYS_WHERE.search("in the `cpu` profile, 92 %") and SAYS_WHERE.search("(Ho & Salimans, 2022): 38 %")
    assert not SAYS_WHERE.search("the model gets 92 % of shapes right")
