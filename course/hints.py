"""Progressive hints for the exercises: ``hint("ddim_step")`` gives the idea, ``hint("ddim_step", 2)`` the
formula, ``hint("ddim_step", 3)`` the code, in the edition's language.

Each checker module (``course.checks.*``) keeps the hints of its exercises next to its checkers, in a dict
``HINTS = {name: (level 1, level 2, level 3)}`` whose levels are ``{"en": …, "fr": …}``; this module finds them.
"""

from __future__ import annotations

import importlib
import pkgutil

from course.language import current, tr

LEVELS = 3


def _level_name(level: int) -> str:
    return {1: tr(en="the idea", fr="l'idée"), 2: tr(en="the formula", fr="la formule"), 3: tr(en="the code", fr="le code")}[level]


def all_hints() -> dict[str, tuple[dict[str, str], ...]]:
    """Every exercise's hints, gathered from the ``HINTS`` of the modules of :mod:`course.checks`."""
    import course.checks

    found: dict[str, tuple[dict[str, str], ...]] = {}
    for info in pkgutil.iter_modules(course.checks.__path__):
        module = importlib.import_module(f"course.checks.{info.name}")
        found.update(getattr(module, "HINTS", {}))
    return found


def hint_text(name: str, level: int = 1) -> str:
    """The text of hint ``level`` (1: idea, 2: formula, 3: code) of exercise ``name``, in the edition's language."""
    hints = all_hints()
    if name not in hints:
        raise ValueError(tr(en=f"no hints for {name!r}: exercises with hints are {', '.join(sorted(hints))}",
                            fr=f"pas d'indice pour {name!r} : les exercices qui en ont sont {', '.join(sorted(hints))}"))
    if not isinstance(level, int) or not 1 <= level <= LEVELS:
        raise ValueError(tr(en=f"level must be 1 (the idea), 2 (the formula) or 3 (the code), got {level!r}",
                            fr=f"le niveau doit valoir 1 (l'idée), 2 (la formule) ou 3 (le code), reçu {level!r}"))
    text = hints[name][level - 1][current()]
    head = tr(en=f"💡 {name}, hint {level}/{LEVELS} ({_level_name(level)}): ", fr=f"💡 {name}, indice {level}/{LEVELS} ({_level_name(level)}) : ")
    more = "" if level == LEVELS else tr(en=f"\n   still stuck? hint({name!r}, {level + 1}) gives {_level_name(level + 1)}.",
                                         fr=f"\n   toujours bloqué ? hint({name!r}, {level + 1}) donne {_level_name(level + 1)}.")
    return (head.rstrip() + "\n   " if level == LEVELS else head) + text + more


def hint(name: str, level: int = 1) -> None:
    """Print hint ``level`` of exercise ``name`` (1: the idea, 2: the formula, 3: the code)."""
    print(hint_text(name, level))
