"""Build the four editions of every lesson from its single source, and keep the README true.

Source: ``lessons/NN_slug.py``, a jupytext percent-format notebook that a lecturer opens in
JupyterLab ("Open With → Notebook"). Conventions (see ``lessons/README.md``):

- a markdown cell whose header says ``lang="fr"`` (or ``"en"``) goes to that language only;
  a cell without ``lang`` goes to both. Code cells are shared by both languages.
- inside a code cell, ``# BEGIN SOLUTION`` … ``# END SOLUTION`` delimits what the learner writes.
  ``# HINT: …`` lines in the region are kept in the exercise edition; ``# STUB: …`` lines give
  the exercise's placeholder code (default: ``raise NotImplementedError``).

Editions: ``notebooks/{fr,en}`` (exercises: regions replaced by hints and a stub, no outputs,
no ``NBVAL_CHECK_OUTPUT`` markers) and ``solutions/{fr,en}`` (complete, executed outputs).
Both start with an "Open in Colab" badge and a setup cell that installs the course in Colab.

Usage::

    python -m course.build                 # regenerate; execute solutions whose code changed (cpu profile)
    python -m course.build --force          # re-execute every solution edition
    python -m course.build --time smoke     # time each lesson in a profile (for the README table)
    python -m course.build --check          # exit 1 if anything generated is stale (what the tests check)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import tomllib
from pathlib import Path

import nbformat

from course.lessons import LANGUAGES, Lesson, available_lessons
from course.paths import repo_root

BEGIN, END, HINT, STUB = "# BEGIN SOLUTION", "# END SOLUTION", "# HINT:", "# STUB:"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
EDITIONS = ("notebooks", "solutions")
TIMINGS_FILE = "lessons/timings.json"
README_START, README_END = "<!-- lessons:start -->", "<!-- lessons:end -->"
_KEEP_CELL_METADATA = ("tags",)


class BuildError(ValueError):
    """A lesson source breaks a convention; the message names the file and the cell."""


def repository_url() -> str:
    """The repository URL, declared once in pyproject.toml ([project.urls] Repository)."""
    with open(repo_root() / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


# ----------------------------------------------------------------------------- code transforms


def _regions(source: str, where: str) -> list[tuple[int, int]]:
    """(begin, end) line indices of solution regions; raises on unbalanced markers."""
    regions, start = [], None
    for i, line in enumerate(source.splitlines()):
        stripped = line.strip()
        if stripped == BEGIN:
            if start is not None:
                raise BuildError(f"{where}: nested '{BEGIN}' at line {i + 1}")
            start = i
        elif stripped == END:
            if start is None:
                raise BuildError(f"{where}: '{END}' without '{BEGIN}' at line {i + 1}")
            regions.append((start, i))
            start = None
    if start is not None:
        raise BuildError(f"{where}: '{BEGIN}' at line {start + 1} is never closed")
    return regions


def solution_code(source: str, where: str = "cell") -> str:
    """The complete code: markers and hint/stub lines removed."""
    _regions(source, where)
    drop = (BEGIN, END, HINT, STUB)
    return "\n".join(line for line in source.splitlines() if not line.strip().startswith(drop))


def exercise_code(source: str, where: str = "cell") -> str:
    """The learner's code: each region replaced by its hints and its stub; check markers removed."""
    lines = source.splitlines()
    out: list[str] = []
    cursor = 0
    for begin, end in _regions(source, where):
        out.extend(lines[cursor:begin])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        body = [line.strip() for line in lines[begin + 1 : end]]
        hints = [line for line in body if line.startswith(HINT)]
        stubs = [line[len(STUB) :].strip() for line in body if line.startswith(STUB)]
        out.append(f"{indent}# ✏️ EXERCISE — your code here")
        out.extend(f"{indent}{hint}" for hint in hints)
        out.extend(f"{indent}{stub}" for stub in (stubs or ["raise NotImplementedError"]))
        cursor = end + 1
    out.extend(lines[cursor:])
    return "\n".join(line for line in out if line.strip() != CHECK_MARK)


# ----------------------------------------------------------------------------- notebooks


def read_source(lesson: Lesson) -> nbformat.NotebookNode:
    import jupytext

    return jupytext.read(lesson.source)


def code_hash(nb: nbformat.NotebookNode) -> str:
    """sha256 of the code cells' sources: solution outputs are valid only for this exact code."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.encode() + b"\0")
    return h.hexdigest()


def header_cells(lesson: Lesson, lang: str, edition: str) -> list[nbformat.NotebookNode]:
    url = repository_url()
    path = lesson.notebook(edition, lang).relative_to(repo_root()).as_posix()
    colab = url.replace("https://github.com/", "https://colab.research.google.com/github/") + f"/blob/main/{path}"
    note = {
        "fr": "Source unique : `lessons/{stem}.py` — ce carnet est généré, modifiez la source.",
        "en": "Single source: `lessons/{stem}.py` — this notebook is generated, edit the source.",
    }[lang].format(stem=lesson.stem)
    badge = nbformat.v4.new_markdown_cell(
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})\n\n<small>{note}</small>"
    )
    setup = nbformat.v4.new_code_cell(
        "# Setup: in Colab, fetch and install the course (about a minute); elsewhere, nothing happens.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import os, subprocess\n"
        "\n"
        f'    REPO, DEST = "{url}", "/content/course"\n'
        "    if not os.path.isdir(DEST):\n"
        '        subprocess.run(["git", "clone", "--depth", "1", REPO, DEST], check=True)\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", DEST], check=True)\n'
        "    sys.path.insert(0, DEST)"
    )
    return [badge, setup]


def make_edition(source: nbformat.NotebookNode, lesson: Lesson, lang: str, edition: str) -> nbformat.NotebookNode:
    """One edition (``"notebooks"`` or ``"solutions"``) in one language, without outputs."""
    if lang not in LANGUAGES:
        raise BuildError(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    cells = header_cells(lesson, lang, edition)
    for i, cell in enumerate(source.cells):
        where = f"{lesson.source.name}, cell {i + 1}"
        cell_lang = cell.metadata.get("lang")
        if cell_lang is not None and cell_lang not in LANGUAGES:
            raise BuildError(f"{where}: lang={cell_lang!r}, expected one of {', '.join(LANGUAGES)}")
        if cell.cell_type == "code" and cell_lang is not None:
            raise BuildError(f"{where}: code cells are shared by all languages; remove lang={cell_lang!r}")
        if cell_lang not in (None, lang):
            continue
        metadata = {k: v for k, v in cell.metadata.items() if k in _KEEP_CELL_METADATA}
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(cell.source, metadata=metadata))
        elif cell.cell_type == "code":
            code = solution_code(cell.source, where) if edition == "solutions" else exercise_code(cell.source, where)
            cells.append(nbformat.v4.new_code_cell(code, metadata=metadata))
        else:
            cells.append(nbformat.v4.new_raw_cell(cell.source, metadata=metadata))
    for i, cell in enumerate(cells):
        cell.id = f"c{i:03d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "course": {"lesson": lesson.number, "lang": lang, "edition": edition, "source": f"lessons/{lesson.source.name}"},
    }
    return nb


def _comparable(nb: nbformat.NotebookNode) -> list[tuple]:
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


def _carry_outputs(new: nbformat.NotebookNode, old: nbformat.NotebookNode) -> bool:
    """Copy outputs (with the widget state they refer to and the kernel's language info) from an older solution
    edition when its code is unchanged. True if carried."""
    executed = old.metadata.get("course", {}).get("executed")
    if not executed or executed.get("code_sha256") != code_hash(new):
        return False
    old_code = [c for c in old.cells if c.cell_type == "code"]
    new_code = [c for c in new.cells if c.cell_type == "code"]
    for src, dst in zip(old_code, new_code):
        dst.outputs, dst.execution_count = src.outputs, src.execution_count
    new.metadata["course"]["executed"] = executed
    for key in ("widgets", "language_info"):  # progress bars' saved state; the kernel that produced the outputs
        if key in old.metadata:
            new.metadata[key] = old.metadata[key]
    return True


# ----------------------------------------------------------------------------- execution


def execute(nb: nbformat.NotebookNode, workdir: Path, profile: str, timeout: int = 3600) -> float:
    """Run a notebook in place on a fresh kernel in ``profile``; returns the wall time in seconds."""
    from nbclient import NotebookClient

    saved = {k: os.environ.get(k) for k in ("COURSE_PROFILE", "COURSE_NO_WIDGETS")}
    os.environ.update(COURSE_PROFILE=profile, COURSE_NO_WIDGETS="1")
    try:
        start = time.perf_counter()
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(workdir)}}
        )
        client.execute()
        return time.perf_counter() - start
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_timings() -> dict[str, dict[str, float]]:
    path = repo_root() / TIMINGS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def save_timing(lesson: Lesson, profile: str, seconds: float) -> None:
    timings = load_timings()
    timings.setdefault(lesson.stem, {})[profile] = round(seconds, 1)
    (repo_root() / TIMINGS_FILE).write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- README


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def lesson_table() -> str:
    """The README's lesson table: lesson · what you build · slide section · time per profile."""
    timings = load_timings()
    rows = [
        "| # | lesson / leçon | what you build / ce que l'on construit | slides | smoke | cpu | gpu |",
        "|---|---|---|---|---|---|---|",
    ]
    for lesson in available_lessons():
        t = timings.get(lesson.stem, {})
        links = " · ".join(
            f"[{lang}]({lesson.notebook('notebooks', lang).relative_to(repo_root()).as_posix()})" for lang in LANGUAGES
        )
        builds = lesson.builds["en"].replace("|", "\\|")  # a bare | would split the table cell
        rows.append(
            f"| {lesson.number:02d} | {lesson.title['en']} / {lesson.title['fr']} ({links}) | {builds} "
            f"| {lesson.slides} | {_fmt_time(t.get('smoke'))} | {_fmt_time(t.get('cpu'))} | {_fmt_time(t.get('gpu'))} |"
        )
    return "\n".join(rows)


def render_readme(text: str) -> str:
    if README_START not in text or README_END not in text:
        raise BuildError(f"README.md must contain the markers {README_START} and {README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{lesson_table()}\n{README_END}{tail}"


# ----------------------------------------------------------------------------- the command


def expected_editions(lesson: Lesson) -> dict[tuple[str, str], nbformat.NotebookNode]:
    source = read_source(lesson)
    return {(e, lang): make_edition(source, lesson, lang, e) for e in EDITIONS for lang in LANGUAGES}


def stale_files() -> list[str]:
    """Generated files that differ from what their sources produce, with the reason (empty = fresh)."""
    problems = []
    for lesson in available_lessons():
        for (edition, lang), nb in expected_editions(lesson).items():
            path = lesson.notebook(edition, lang)
            rel = path.relative_to(repo_root())
            if not path.exists():
                problems.append(f"{rel}: missing")
                continue
            on_disk = nbformat.read(path, as_version=4)
            if _comparable(on_disk) != _comparable(nb):
                problems.append(f"{rel}: cells differ from lessons/{lesson.source.name}")
            elif edition == "solutions":
                executed = on_disk.metadata.get("course", {}).get("executed", {})
                if executed.get("code_sha256") != code_hash(nb):
                    problems.append(f"{rel}: outputs were not produced by the current code")
            elif any(c.get("outputs") for c in on_disk.cells if c.cell_type == "code"):
                problems.append(f"{rel}: exercise editions must not hold outputs")
    readme = repo_root() / "README.md"
    if readme.read_text() != render_readme(readme.read_text()):
        problems.append("README.md: the lesson table is stale")
    return problems


def build(force: bool = False, profile: str = "cpu", only: list[int] | None = None) -> None:
    for lesson in available_lessons():
        if only and lesson.number not in only:
            continue
        editions = expected_editions(lesson)
        for lang in LANGUAGES:
            path = lesson.notebook("notebooks", lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(editions[("notebooks", lang)], path)
        solutions = {lang: editions[("solutions", lang)] for lang in LANGUAGES}
        first = solutions[LANGUAGES[0]]
        old_path = lesson.notebook("solutions", LANGUAGES[0])
        carried = not force and old_path.exists() and _carry_outputs(first, nbformat.read(old_path, as_version=4))
        old_path.parent.mkdir(parents=True, exist_ok=True)
        if carried:
            print(f"{lesson.stem}: code unchanged, outputs kept")
        else:
            print(f"{lesson.stem}: executing in the {profile} profile …", flush=True)
            seconds = execute(first, old_path.parent, profile)
            first.metadata["course"]["executed"] = {"profile": profile, "code_sha256": code_hash(first)}
            save_timing(lesson, profile, seconds)
            print(f"{lesson.stem}: {seconds:.1f} s")
        for lang in LANGUAGES[1:]:  # code cells are identical: the outputs are too
            _carry_outputs(solutions[lang], first)
        for lang, nb in solutions.items():
            path = lesson.notebook("solutions", lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
    readme = repo_root() / "README.md"
    readme.write_text(render_readme(readme.read_text()))


def time_profile(profile: str, only: list[int] | None = None) -> None:
    """Execute each lesson's first-language solution in ``profile`` and record the wall time."""
    for lesson in available_lessons():
        if only and lesson.number not in only:
            continue
        nb = expected_editions(lesson)[("solutions", LANGUAGES[0])]
        seconds = execute(nb, lesson.notebook("solutions", LANGUAGES[0]).parent, profile)
        save_timing(lesson, profile, seconds)
        print(f"{lesson.stem} [{profile}]: {seconds:.1f} s", flush=True)
    readme = repo_root() / "README.md"
    readme.write_text(render_readme(readme.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="re-execute every solution edition")
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "gpu"), help="profile for executed outputs")
    parser.add_argument("--time", metavar="PROFILE", choices=("smoke", "cpu", "gpu"), help="only time lessons in PROFILE")
    parser.add_argument("--check", action="store_true", help="report stale generated files; exit 1 if any")
    parser.add_argument("--lesson", type=int, action="append", help="limit to this lesson number (repeatable)")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files()
        print("\n".join(problems) if problems else "everything generated is up to date")
        return 1 if problems else 0
    if args.time:
        time_profile(args.time, args.lesson)
    else:
        build(force=args.force, profile=args.profile, only=args.lesson)
    return 0


if __name__ == "__main__":
    sys.exit(main())
