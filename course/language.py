"""The edition's language: whether a learner reads French or English in checker messages, hints, printed
results and figure labels.

Each generated notebook's first code cell sets it (``COURSE_LANG=fr`` in the French editions), so the
same code cells print « ✅ q_sample : correct » in one edition and "✅ q_sample: correct" in the other.
Code, identifiers and docstrings stay in English; only what a learner reads follows the language.

    from course.language import tr
    print(tr(en=f"{n} steps in {s:.0f} s", fr=f"{n} étapes en {s:.0f} s"))

Outside a notebook the language is English unless ``COURSE_LANG`` says otherwise.
"""

from __future__ import annotations

import os
import re

LANGUAGES: tuple[str, ...] = ("fr", "en")
ENV = "COURSE_LANG"
DEFAULT = "en"


def current() -> str:
    """The language learners read now: ``COURSE_LANG`` if it names one of :data:`LANGUAGES`, else English."""
    lang = os.environ.get(ENV, DEFAULT).strip().lower()
    return lang if lang in LANGUAGES else DEFAULT


def set_language(lang: str) -> str:
    """Make ``lang`` ("fr" or "en") the language of every later message; returns it."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    os.environ[ENV] = lang
    return lang


def tr(*, en: str, fr: str) -> str:
    """The text in the current language: ``fr`` in a French edition, ``en`` otherwise."""
    return fr if current() == "fr" else en


def hardware(text: str) -> str:
    """A recorded machine description ("AMD EPYC (2 threads), no GPU", as manifests store it) in the current language:
    « AMD EPYC (2 fils d'exécution), sans GPU » in French; text of another form is returned as it is."""
    if current() != "fr":
        return text
    match = re.fullmatch(r"(.*) \((\d+) threads?\)(.*)", text)
    if match is not None:
        cpu, n, rest = match.groups()
        text = f"{cpu} ({n} fil{'s' if int(n) > 1 else ''} d'exécution){rest}"
    return text.replace(", no GPU", ", sans GPU")


def num(value: float, spec: str = "") -> str:
    """``value`` formatted with ``spec`` ("{:,.2f}"'s part after the colon), with the language's marks:
    "1,234.56" in English, « 1 234,56 » in French (decimal comma, a space between thousands)."""
    text = format(value, spec)
    return text.replace(",", " ").replace(".", ",") if current() == "fr" else text
