"""``python -m course``: the environment check and the lesson list (offline, nothing to download)."""

from __future__ import annotations

import argparse
import sys

from course import env
from course.lessons import LESSONS


def lesson_list(lang: str = "en") -> str:
    lines = []
    for lesson in LESSONS:
        mark = "  " if lesson.available else "… "
        lines.append(f"{mark}{lesson.number:02d}  {lesson.title[lang]:<34} {lesson.builds[lang]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course",
        description="La Théorie de la Diffusion Stable — built from scratch. "
        "Without a command: check the environment and list the lessons.",
    )
    parser.add_argument("--lang", choices=("fr", "en"), default="en", help="language of the lesson list")
    args = parser.parse_args(argv)

    print("Environment / Environnement")
    ok = env.report()
    print()
    print("Lessons / Leçons  (… = coming later / à venir)")
    print(lesson_list(args.lang))
    print()
    print("Open the exercises: jupyter lab notebooks/" + args.lang + "/   (solutions: solutions/" + args.lang + "/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
