"""Build the four editions of every lesson from its single source, and keep the README true.

Source: ``lessons/NN_slug.py``, a jupytext percent-format notebook that a lecturer opens in
JupyterLab ("Open With → Notebook"). Conventions (see ``lessons/README.md``):

- a markdown cell whose header says ``lang="fr"`` (or ``"en"``) goes to that language only;
  a cell without ``lang`` goes to both. Code cells are shared by both languages; what they print or
  label follows the edition's language through ``course.language.tr(en=…, fr=…)``.
- inside a code cell, ``# BEGIN SOLUTION`` … ``# END SOLUTION`` delimits what the learner writes.
  ``# HINT[fr]: …`` and ``# HINT[en]: …`` lines in the region are kept in that language's exercise edition
  (``# HINT: …`` in both); ``# STUB: …`` lines give
  the exercise's placeholder code (default: ``raise NotImplementedError``).

- ``{{file.json:key.path|format}}`` in a markdown cell is replaced by that number of ``data/file.json``,
  formatted for the edition's language (:func:`fill_numbers`): prose never copies a measurement by hand.

Editions: ``notebooks/{fr,en}`` (exercises: regions replaced by hints and a stub, no outputs,
no ``NBVAL_CHECK_OUTPUT`` markers) and ``solutions/{fr,en}`` (complete, executed outputs).
Both start with an "Open in Colab" badge and a setup cell that sets the edition's language
(``COURSE_LANG``) and installs the course in Colab. Each language's solution edition is executed on its
own kernel, so its outputs (checker messages, results, figure labels) are in its language.

Usage::

    python -m course.build                 # regenerate; execute solutions whose code changed (cpu profile)
    python -m course.build --force          # re-execute every solution edition
    python -m course.build --time smoke     # time each lesson in a profile (for the README table)
    python -m course.build --check          # exit 1 if anything generated is stale (what the tests check)
    python -m course.build --overwrite      # also replace generated notebooks that were edited (learners' work!)

Freshness. An executed solution edition records in ``metadata.course.executed`` what its outputs
depend on: the sha256 of its code cells, and the sha256 of every ``course/`` module the code imports
(transitively, found by parsing the imports) and of every JSON file under ``data/`` (the checkpoint
manifests record the sha256 of their weights). A change in any of them makes the outputs stale.

Nothing lost. Every generated notebook records ``metadata.course.generated_sha256``, a fingerprint of
its cells' sources. The build refuses to replace a notebook whose cells no longer match it (or an
exercise notebook holding outputs: a learner ran it) unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import tempfile
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


HINT_IN = re.compile(r"# HINT\[(fr|en)\]:\s?")  # a hint line for one language
EXERCISE_MARK = {"en": "# ✏️ EXERCISE — your code here", "fr": "# ✏️ EXERCICE — votre code ici"}
HINT_WORD = {"en": "# HINT: ", "fr": "# INDICE : "}


def _is_hint(line: str) -> bool:
    return line.startswith(HINT) or HINT_IN.match(line) is not None


def solution_code(source: str, where: str = "cell") -> str:
    """The complete code: markers and hint/stub lines removed."""
    _regions(source, where)
    drop = (BEGIN, END, STUB)
    return "\n".join(line for line in source.splitlines() if not (line.strip().startswith(drop) or _is_hint(line.strip())))


def _hint_line(line: str, lang: str) -> str | None:
    """A hint line as the ``lang`` edition shows it: ``# HINT[fr]: …`` only in French, as « # INDICE : … »."""
    match = HINT_IN.match(line)
    if match is None:
        return line if line.startswith(HINT) else None
    return HINT_WORD[lang] + line[match.end():] if match.group(1) == lang else None


def exercise_code(source: str, where: str = "cell", lang: str = "en") -> str:
    """The learner's code: each region replaced by its hints (those of ``lang``) and its stub; check markers removed."""
    lines = source.splitlines()
    out: list[str] = []
    cursor = 0
    for begin, end in _regions(source, where):
        out.extend(lines[cursor:begin])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        body = [line.strip() for line in lines[begin + 1 : end]]
        hints = [h for h in (_hint_line(line, lang) for line in body) if h is not None]
        stubs = [line[len(STUB) :].strip() for line in body if line.startswith(STUB)]
        out.append(f"{indent}{EXERCISE_MARK[lang]}")
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


def _python_source(source: str) -> str:
    """A cell's code as plain Python (IPython magics and ``!`` commands turned into calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython comes with every Jupyter install
        return source
    return TransformerManager().transform_cell(source)


def _module_file(name: str, root: Path) -> Path | None:
    """The file of module ``name`` (``course.x.y``) under ``root``, or None if it is not a module there."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_course_modules(tree: ast.AST, package: str, root: Path) -> set[str]:
    """``course`` modules imported anywhere in ``tree`` (top level or inside functions), with their parents.

    ``package`` is the package the code belongs to (for relative imports), ``""`` for a notebook.
    """
    found: set[str] = set()

    def add(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing course.a.b runs course/__init__.py and course/a/__init__.py
            prefix = ".".join(parts[:i])
            if _module_file(prefix, root) is not None:
                found.add(prefix)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "course" or alias.name.startswith("course."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts) or not parts:
                    continue
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module != "course" and not module.startswith("course."):
                continue
            add(module)
            for alias in node.names:  # `from course import samplers` imports the module course.samplers
                if _module_file(f"{module}.{alias.name}", root) is not None:
                    add(f"{module}.{alias.name}")
    return found


def course_modules(code: list[str], root: Path | None = None, where: str = "notebook") -> list[str]:
    """The ``course`` modules that ``code`` (a notebook's code cells) imports, directly or through other
    ``course`` modules, sorted. Found by parsing: imports inside functions count too (over-counting only
    costs a re-execution; missing one would leave stale outputs)."""
    root = root or repo_root()
    todo: set[str] = set()
    for i, source in enumerate(code):
        try:
            tree = ast.parse(_python_source(source))
        except SyntaxError as err:
            raise BuildError(f"{where}: code cell {i + 1} does not parse ({err.msg}, line {err.lineno})") from None
        todo |= _imported_course_modules(tree, "", root)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name, root)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo |= _imported_course_modules(ast.parse(path.read_text(), str(path)), package, root) - seen
    return sorted(seen)


def dependency_hashes(nb: nbformat.NotebookNode, root: Path | None = None) -> dict[str, str]:
    """sha256 of what a solution's outputs depend on besides its code, by repository-relative path: the
    ``course`` modules its code imports (transitively) and every JSON file under ``data/``.

    All of ``data/``'s JSON files, not only those the lesson loads: which checkpoint a lesson reads is
    decided at run time inside ``course`` (``data_dir() / CHECKPOINT``), so tracing it would be fragile;
    the manifests hold the sha256 of their weights, so they change exactly when a model is retrained,
    which is rare, and an over-report only costs re-executing a lesson."""
    root = root or repo_root()
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    where = nb.metadata.get("course", {}).get("source", "notebook")
    paths = [_module_file(name, root) for name in course_modules(code, root, where)]
    paths += sorted((root / "data").rglob("*.json"))
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _digest(deps: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()


def execution_record(nb: nbformat.NotebookNode, profile: str, root: Path | None = None) -> dict:
    """What ``metadata.course.executed`` holds: the profile and the fingerprints of code and dependencies."""
    deps = dependency_hashes(nb, root)
    return {"profile": profile, "code_sha256": code_hash(nb), "deps_sha256": _digest(deps), "deps": deps}


def stale_reason(executed: dict | None, nb: nbformat.NotebookNode, root: Path | None = None) -> str | None:
    """Why outputs recorded as ``executed`` are not valid for ``nb`` today (``None`` if they are)."""
    if not executed:
        return "it was never executed"
    if executed.get("code_sha256") != code_hash(nb):
        return "its code cells changed since it was executed"
    if "deps_sha256" not in executed or "deps" not in executed:
        return "it was executed before the build recorded its course/ modules and data/ manifests"
    now, then = dependency_hashes(nb, root), executed["deps"]
    if executed["deps_sha256"] == _digest(now) and then == now:
        return None
    changes = []
    for path in sorted(set(now) | set(then)):
        if path not in then:
            changes.append(f"{path} is newly used")
        elif path not in now:
            changes.append(f"{path} is no longer used")
        elif now[path] != then[path]:
            changes.append(f"{path} changed")
    return (", ".join(changes) or "its dependency record is inconsistent") + " since it was executed"


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
    failed = {
        "fr": "Impossible d'installer le cours depuis {where} ({why}). Téléversez le fichier « course-*.whl » "
              "(python -m course.wheel, ou la page « Releases » du dépôt) dans /content avec l'icône dossier, "
              "puis relancez cette cellule.",
        "en": "Could not install the course from {where} ({why}). Upload the file 'course-*.whl' "
              "(python -m course.wheel, or the repository's releases page) to /content with the folder icon, "
              "then run this cell again.",
    }[lang]
    setup = nbformat.v4.new_code_cell(
        f"# Setup: this edition's language ({lang}: messages and labels); in Colab, install the course (about a minute):\n"
        "# a wheel uploaded to /content if there is one, else a clone of REPO (set in pyproject.toml); elsewhere, nothing else.\n"
        "import os\n"
        "import sys\n"
        "\n"
        f'os.environ["COURSE_LANG"] = "{lang}"\n'
        'if "google.colab" in sys.modules:\n'
        "    import glob\n"
        "    import importlib\n"
        "    import subprocess\n"
        "\n"
        "    class SetupError(Exception):\n"
        "        def _render_traceback_(self):  # IPython prints this sentence instead of a traceback\n"
        "            return [str(self)]\n"
        "\n"
        "    def run(*command):\n"
        '        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})\n'
        '        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["exit code %d" % done.returncode]\n'
        '        return "" if done.returncode == 0 else next((line for line in lines if line.startswith(("fatal:", "ERROR:"))), lines[-1])\n'
        "\n"
        f'    REPO, DEST = "{url}", "/content/course"\n'
        f"    FAILED = {failed!r}\n"
        '    wheels = sorted(glob.glob("/content/course-*.whl"))\n'
        "    if importlib.util.find_spec(\"course\") is not None:\n"
        "        pass  # already installed (this cell ran before, or the wheel was installed by hand)\n"
        "    elif wheels:\n"
        '        if why := run(sys.executable, "-m", "pip", "install", "-q", wheels[-1]):\n'
        "            raise SetupError(FAILED.format(where=wheels[-1], why=why))\n"
        "    else:\n"
        '        why = "" if os.path.isdir(DEST) else run("git", "clone", "--depth", "1", REPO, DEST)\n'
        '        why = why or run(sys.executable, "-m", "pip", "install", "-q", "-e", DEST)\n'
        "        if why:\n"
        "            raise SetupError(FAILED.format(where=REPO, why=why))\n"
        "        sys.path.insert(0, DEST)\n"
        "    importlib.invalidate_caches()"
    )
    return [badge, setup]


NUMBER = re.compile(r"\{\{\s*([\w.+-]+\.json):([^|}\s]+)\|(\w+)\s*\}\}")  # {{geneval.json:shipped.rates.single|pct1}}
NUMBER_FORMATS = ("pct0", "pct1", "num0", "num1", "num2", "num3", "int")


def format_number(value: float, fmt: str, lang: str) -> str:
    """``value`` as prose writes it in ``lang``: "92.2 %" / « 92,2 % » (pct: a fraction), "1,024" / « 1 024 » (int)."""
    if fmt not in NUMBER_FORMATS:
        raise BuildError(f"unknown number format {fmt!r}: choose one of {', '.join(NUMBER_FORMATS)}")
    if fmt == "int":
        text = f"{round(value):,}"
    else:
        digits = int(fmt[-1])
        text = f"{100 * value if fmt.startswith('pct') else value:,.{digits}f}" + (" %" if fmt.startswith("pct") else "")
    return text.replace(",", " ").replace(".", ",") if lang == "fr" else text


def fill_numbers(text: str, lang: str, where: str, root: Path | None = None) -> str:
    """Replace every ``{{file.json:key.path|format}}`` of a markdown cell by that value of ``data/file.json``, formatted
    for ``lang``: numbers the prose quotes from a shipped measurement are read from it, never copied by hand."""
    root = root or repo_root()

    def value(match: re.Match) -> str:
        name, path, fmt = match.groups()
        file = root / "data" / name
        if not file.is_file():
            raise BuildError(f"{where}: {match.group(0)} names data/{name}, which does not exist")
        node = json.loads(file.read_text(encoding="utf-8"))
        for key in path.split("."):
            try:
                node = node[int(key)] if isinstance(node, list) else node[key]
            except (KeyError, IndexError, ValueError):
                raise BuildError(f"{where}: {match.group(0)}: data/{name} has no {key!r} on the way to {path!r}") from None
        if not isinstance(node, (int, float)) or isinstance(node, bool):
            raise BuildError(f"{where}: {match.group(0)} is not a number in data/{name} (got {type(node).__name__})")
        return format_number(node, fmt, lang)

    return NUMBER.sub(value, text)


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
            cells.append(nbformat.v4.new_markdown_cell(fill_numbers(cell.source, lang, where), metadata=metadata))
        elif cell.cell_type == "code":
            code = solution_code(cell.source, where) if edition == "solutions" else exercise_code(cell.source, where, lang)
            cells.append(nbformat.v4.new_code_cell(code, metadata=metadata))
        else:
            cells.append(nbformat.v4.new_raw_cell(cell.source, metadata=metadata))
    for i, cell in enumerate(cells):
        cell.id = f"c{i:03d}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "course": {
            "lesson": lesson.number,
            "lang": lang,
            "edition": edition,
            "source": f"lessons/{lesson.source.name}",
            "generated_sha256": generated_hash(nb),
        },
    }
    return nb


def generated_hash(nb: nbformat.NotebookNode) -> str:
    """sha256 of the cells' types and sources: recorded at generation, it tells a hand-edited notebook apart."""
    h = hashlib.sha256()
    for cell in nb.cells:
        h.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return h.hexdigest()


def edited_reason(on_disk: nbformat.NotebookNode, edition: str) -> str | None:
    """Why a generated notebook on disk holds someone's work (``None`` if it is as the build wrote it).

    Its cells' sources no longer match the fingerprint recorded at generation, or (exercise editions only,
    which the build writes without outputs) it holds outputs: a learner ran it."""
    recorded = on_disk.metadata.get("course", {}).get("generated_sha256")
    if recorded is None:
        return "has no build fingerprint (written by an older build, or by hand)"
    if generated_hash(on_disk) != recorded:
        return "was edited since it was generated"
    if edition == "notebooks" and any(c.get("outputs") or c.get("execution_count") for c in on_disk.cells if c.cell_type == "code"):
        return "holds outputs (someone ran it) since it was generated"
    return None


def _comparable(nb: nbformat.NotebookNode) -> list[tuple]:
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


def _carry_outputs(new: nbformat.NotebookNode, old: nbformat.NotebookNode, root: Path | None = None) -> bool:
    """Copy outputs (with the widget state they refer to and the kernel's language info) from an older solution
    edition when they are still valid: same code (in the record and in the old notebook's cells) and same
    ``course`` modules and ``data/`` manifests. True if carried."""
    executed = old.metadata.get("course", {}).get("executed")
    if stale_reason(executed, new, root) is not None or code_hash(old) != code_hash(new):
        return False
    old_code = [c for c in old.cells if c.cell_type == "code"]
    new_code = [c for c in new.cells if c.cell_type == "code"]
    for src, dst in zip(old_code, new_code):
        dst.outputs, dst.execution_count = src.outputs, src.execution_count
    keep_vector_figures(new)  # a cell no longer tagged key-figure drops its SVG (a newly tagged one needs --force)
    new.metadata["course"]["executed"] = executed
    for key in ("widgets", "language_info"):  # progress bars' saved state; the kernel that produced the outputs
        if key in old.metadata:
            new.metadata[key] = old.metadata[key]
    return True


# ----------------------------------------------------------------------------- execution


def execute(nb: nbformat.NotebookNode, workdir: Path, profile: str, timeout: int = 3600) -> float:
    """Run a notebook in place on a fresh kernel in ``profile``; returns the wall time in seconds."""
    from nbclient import NotebookClient

    saved = {k: os.environ.get(k) for k in ("COURSE_PROFILE", "COURSE_NO_WIDGETS", "IPYTHONDIR", "SOURCE_DATE_EPOCH")}
    with tempfile.TemporaryDirectory(prefix="course-ipython-") as ipython_dir:
        kernel_profile(Path(ipython_dir))
        os.environ.update(COURSE_PROFILE=profile, COURSE_NO_WIDGETS="1", IPYTHONDIR=ipython_dir, SOURCE_DATE_EPOCH="0")
        try:
            start = time.perf_counter()
            client = NotebookClient(
                nb, timeout=timeout, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(workdir)}}
            )
            client.execute()
            seconds = time.perf_counter() - start
            keep_vector_figures(nb)
            return seconds
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


KEY_FIGURE = "key-figure"  # the tag of a lesson's code cell whose figure goes to the lecturer kit, as PNG and SVG


def kernel_profile(ipython_dir: Path) -> None:
    """A clean IPython profile for the build's kernels: figures as PNG and SVG (reproducible ids and dates)."""
    profile = ipython_dir / "profile_default"
    (profile / "startup").mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text('c.InlineBackend.figure_formats = {"png", "svg"}\n')
    (profile / "startup" / "00-svg.py").write_text('import matplotlib\nmatplotlib.rcParams["svg.hashsalt"] = "course"\n')


def keep_vector_figures(nb: nbformat.NotebookNode) -> None:
    """Drop the SVG copy of every figure but those of cells tagged ``key-figure`` (the notebooks stay light)."""
    for cell in nb.cells:
        if cell.cell_type != "code" or KEY_FIGURE in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            output.get("data", {}).pop("image/svg+xml", None)


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


def _rebuild(lesson: Lesson, overwrite: bool = False) -> str:
    return f"python -m course.build --lesson {lesson.number}" + (" --overwrite" if overwrite else "")


def _replace_problem(path: Path, new: nbformat.NotebookNode, edition: str) -> str | None:
    """Why writing ``new`` over ``path`` would destroy someone's work (``None`` when it is safe)."""
    if not path.exists():
        return None
    on_disk = nbformat.read(path, as_version=4)
    reason = edited_reason(on_disk, edition)
    if reason is None:
        return None
    has_outputs = any(c.get("outputs") or c.get("execution_count") for c in on_disk.cells if c.cell_type == "code")
    if _comparable(on_disk) == _comparable(new) and (edition == "solutions" or not has_outputs):
        return None  # nothing of value would be lost: writing changes only the metadata
    return reason


def stale_files() -> list[str]:
    """Generated files that differ from what their sources produce, with the reason (empty = fresh)."""
    problems = []
    root = repo_root()
    for lesson in available_lessons():
        for (edition, lang), nb in expected_editions(lesson).items():
            path = lesson.notebook(edition, lang)
            rel = path.relative_to(root).as_posix()
            if not path.exists():
                problems.append(f"{rel}: missing; run {_rebuild(lesson)}")
                continue
            on_disk = nbformat.read(path, as_version=4)
            edited = _replace_problem(path, nb, edition)
            if edited is not None:
                problems.append(
                    f"{rel}: {edited} (your work?): copy it elsewhere, or run {_rebuild(lesson, True)} to replace it"
                )
            elif _comparable(on_disk) != _comparable(nb):
                problems.append(f"{rel}: cells differ from lessons/{lesson.source.name}; run {_rebuild(lesson)}")
            elif on_disk.metadata.get("course", {}).get("generated_sha256") is None:
                problems.append(f"{rel}: has no build fingerprint (written by an older build); run {_rebuild(lesson)}")
            elif edition == "solutions":
                reason = stale_reason(on_disk.metadata.get("course", {}).get("executed"), nb, root)
                if reason is not None:
                    problems.append(f"{rel}: outputs are stale: {reason}; run {_rebuild(lesson)}")
    readme = root / "README.md"
    if readme.read_text() != render_readme(readme.read_text()):
        problems.append("README.md: the lesson table is stale; run python -m course.build")
    return problems


def _refuse_to_destroy(lessons: list[Lesson], editions: dict[str, dict]) -> None:
    """Raise a one-sentence BuildError if writing these lessons' editions would replace someone's work."""
    root = repo_root()
    problems = []
    for lesson in lessons:
        for (edition, lang), nb in editions[lesson.stem].items():
            path = lesson.notebook(edition, lang)
            reason = _replace_problem(path, nb, edition)
            if reason is not None:
                problems.append(f"{path.relative_to(root).as_posix()} {reason}")
    if problems:
        it = "it" if len(problems) == 1 else "them"
        raise BuildError(f"{', '.join(problems)} (your work?): copy {it} elsewhere, or rerun with --overwrite to replace {it}")


def build(force: bool = False, profile: str = "cpu", only: list[int] | None = None, overwrite: bool = False) -> None:
    """Regenerate the editions of every lesson (or of ``only``); execute solutions whose outputs are stale.

    Refuses (BuildError, before writing anything) to replace a generated notebook that was edited since it
    was generated, unless ``overwrite``."""
    lessons = [lesson for lesson in available_lessons() if not only or lesson.number in only]
    if only and (unknown := sorted(set(only) - {lesson.number for lesson in lessons})):
        valid = ", ".join(str(lesson.number) for lesson in available_lessons())
        raise BuildError(f"no lesson source for --lesson {', '.join(map(str, unknown))}: available lessons are {valid}")
    all_editions = {lesson.stem: expected_editions(lesson) for lesson in lessons}
    if not overwrite:
        _refuse_to_destroy(lessons, all_editions)
    for lesson in lessons:
        editions = all_editions[lesson.stem]
        for lang in LANGUAGES:
            path = lesson.notebook("notebooks", lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(editions[("notebooks", lang)], path)
        for lang in LANGUAGES:  # each language runs its own kernel: its messages, results and labels are in that language
            nb = editions[("solutions", lang)]
            path = lesson.notebook("solutions", lang)
            carried = not force and path.exists() and _carry_outputs(nb, nbformat.read(path, as_version=4))
            path.parent.mkdir(parents=True, exist_ok=True)
            if carried:
                print(f"{lesson.stem} [{lang}]: code and dependencies unchanged, outputs kept")
            else:
                print(f"{lesson.stem} [{lang}]: executing in the {profile} profile …", flush=True)
                record = execution_record(nb, profile)  # what the kernel is about to import and read
                seconds = execute(nb, path.parent, profile)
                nb.metadata["course"]["executed"] = record
                if lang == LANGUAGES[0]:
                    save_timing(lesson, profile, seconds)
                print(f"{lesson.stem} [{lang}]: {seconds:.1f} s")
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
    parser.add_argument(
        "--overwrite", action="store_true", help="replace generated notebooks even if they were edited (destroys that work)"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale_files()
            print("\n".join(problems) if problems else "everything generated is up to date")
            return 1 if problems else 0
        if args.time:
            time_profile(args.time, args.lesson)
        else:
            build(force=args.force, profile=args.profile, only=args.lesson, overwrite=args.overwrite)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
