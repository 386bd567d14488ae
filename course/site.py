"""The course as a static site for lecturers and self-paced learners, built with Jupyter Book's stack (Sphinx + MyST-NB).

``python -m course.site`` stages the executed solution editions of both languages (never re-executed) with
pages made from the lesson registry — a table of contents per language, the slides ↔ lessons map, the
lecturer kit (slide sections, class time per profile, key figures as PNG and SVG, the editions to
download), ERRATA and the README's measured tables — then builds them with Sphinx, MyST-NB, sphinx-book-theme and
sphinx-external-toc (what ``jupyter-book build`` runs, without its online parts: Thebe, comments), offline:
maths is typeset by a copy of MathJax 3 served with the site (the files of the PyPI package
``sphinx-mathjax-offline``, whose Sphinx extension cannot be imported under its folder's name, so the files
are copied here), no page loads anything from the network. ``tests/test_site.py`` opens the built pages in headless Chromium.
"""

from __future__ import annotations

import argparse
import base64
import copy
import html
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from course.build import KEY_FIGURE, load_timings, repository_url
from course.lessons import LANGUAGES, Lesson, available_lessons
from course.paths import repo_root

LANGUAGE_NAMES = {"fr": "Français", "en": "English"}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PROFILES = ("smoke", "cpu", "gpu")
MEASURED_SECTIONS = (  # README sections that hold measured tables, copied to the site's "measured" page
    "## Reproduce the shipped models",
    "## The course's modules and the real library",
    "## What the model gets wrong: the composition benchmark",
)

TEXT = {
    "fr": {
        "contents": "Sommaire",
        "intro": "Les leçons, dans l'ordre, en édition corrigée (figures exécutées). Les temps sont ceux de la "
                 "leçon entière, mesurés par `python -m course.build` sur un processeur x86_64 à 2 cœurs sans GPU.",
        "lesson": "leçon", "builds": "ce que l'on construit", "slides": "diapositives", "time": "durée",
        "map": "Diapositives ↔ leçons", "map_intro": "Pour chaque section des diapositives « La Théorie de la "
               "Diffusion Stable », les leçons qui la couvrent.",
        "section": "section des diapositives", "lessons": "leçons",
        "kit": "Kit de l'enseignant", "kit_intro": "Pour chaque leçon : les sections des diapositives couvertes, la "
               "durée en classe par profil (mesurée ; « — » : pas encore mesurée), les figures clés en PNG et SVG "
               "(toutes dans un seul dossier, aussi en archive zip) et les éditions à télécharger.",
        "all_figures": "Toutes les figures clés (zip)", "exercises": "exercices (.ipynb)", "solutions": "corrigé (.ipynb)",
        "figures": "figures clés", "download": "télécharger", "other": "Read in English",
        "colab": "Ouvrir dans Colab", "source": "Source unique : `lessons/{stem}.py`.",
        "also": "Voir aussi : [le kit de l'enseignant](kit.md), [diapositives ↔ leçons](slides.md), "
                "[errata des diapositives](../errata.md), [tableaux mesurés](../measured.md).",
    },
    "en": {
        "contents": "Contents",
        "intro": "The lessons, in order, as solution editions (executed figures). Times are the whole lesson's, "
                 "measured by `python -m course.build` on a 2-core x86_64 CPU without a GPU.",
        "lesson": "lesson", "builds": "what you build", "slides": "slides", "time": "time",
        "map": "Slides ↔ lessons", "map_intro": "For each section of the slides « La Théorie de la Diffusion "
               "Stable », the lessons that cover it.",
        "section": "slide section", "lessons": "lessons",
        "kit": "Lecturer kit", "kit_intro": "For each lesson: the slide sections it covers, class time per profile "
               "(measured; '—': not measured yet), its key figures as PNG and SVG (all in one folder, also as a zip "
               "archive) and the editions to download.",
        "all_figures": "All key figures (zip)", "exercises": "exercises (.ipynb)", "solutions": "solutions (.ipynb)",
        "figures": "key figures", "download": "download", "other": "Lire en français",
        "colab": "Open in Colab", "source": "Single source: `lessons/{stem}.py`.",
        "also": "See also: [the lecturer kit](kit.md), [slides ↔ lessons](slides.md), "
                "[errata of the slides](../errata.md), [measured tables](../measured.md).",
    },
}


class SiteError(Exception):
    """A site that cannot be built (a one-line message)."""


def other_language(lang: str) -> str:
    """The other edition's language."""
    return next(other for other in LANGUAGES if other != lang)


def format_time(seconds: float | None) -> str:
    """A lesson's measured time as the tables write it ("—" when not measured)."""
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def slide_sections(lesson: Lesson) -> list[str]:
    """The slide sections a lesson covers (the registry's ``slides``, split on " ; ")."""
    return [part.strip() for part in lesson.slides.split(";") if part.strip()]


def key_figures(nb: nbformat.NotebookNode) -> list[dict[str, bytes | str | None]]:
    """The figures of the cells tagged ``key-figure``: ``{"png": bytes, "svg": str or None}`` in order."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or KEY_FIGURE not in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                found.append({"png": base64.b64decode(data["image/png"]), "svg": data.get("image/svg+xml")})
    return found


def site_notebook(nb: nbformat.NotebookNode, lesson: Lesson, lang: str) -> nbformat.NotebookNode:
    """A solution edition as the site shows it: a header with the language switch, the Colab and download
    links (no image fetched from the network), and no widget views (they would need a CDN)."""
    nb = copy.deepcopy(nb)
    text, other = TEXT[lang], other_language(lang)
    colab = repository_url().replace("https://github.com/", "https://colab.research.google.com/github/")
    header = (
        f"[{text['other']}](../{other}/{lesson.stem}.ipynb) · "
        f"[{text['colab']}]({colab}/blob/main/solutions/{lang}/{lesson.stem}.ipynb) · {text['download']}{colon(lang)} "
    )
    header += (
        f'<a href="../downloads/{lang}/exercises/{lesson.stem}.ipynb" download>{text["exercises"]}</a>, '
        f'<a href="../downloads/{lang}/solutions/{lesson.stem}.ipynb" download>{text["solutions"]}</a>\n\n'
        f"<small>{text['source'].format(stem=lesson.stem)}</small>"
    )
    if nb.cells and nb.cells[0].cell_type == "markdown" and "colab-badge" in nb.cells[0].source:
        del nb.cells[0]  # the badge's image comes from the web; the header below links to Colab
    if nb.cells and nb.cells[0].cell_type == "code" and nb.cells[0].source.startswith("# Setup:"):
        nb.cells[0].metadata.setdefault("tags", []).append("remove-cell")  # Colab's setup: not for readers of the site
    title = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown" and cell.source.startswith("# ")), 0)
    nb.cells.insert(title, nbformat.v4.new_markdown_cell(header))  # just above the title, where a reader looks first
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_MIME, None)
    return nb


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def index_page(lessons: list[Lesson], lang: str) -> str:
    """A language's table of contents: each lesson with what it builds, its slides and its measured times."""
    text, timings = TEXT[lang], load_timings()
    rows = [
        [f"[{lesson.number:02d} — {lesson.title[lang]}]({lesson.stem}.ipynb)", lesson.builds[lang], lesson.slides]
        + [format_time(timings.get(lesson.stem, {}).get(p)) for p in PROFILES]
        for lesson in lessons
    ]
    table = _table([text["lesson"], text["builds"], text["slides"], *PROFILES], rows)
    other = other_language(lang)
    return (
        f"# {text['contents']}\n\n[{text['other']}](../{other}/index.md)\n\n{text['intro']}\n\n{table}\n\n{text['also']}\n"
    )


def slides_page(lessons: list[Lesson], lang: str) -> str:
    """The slides ↔ lessons map: each slide section, in the order the lessons meet it, with its lessons."""
    sections: dict[str, list[Lesson]] = {}
    for lesson in lessons:
        for section in slide_sections(lesson):
            sections.setdefault(section, []).append(lesson)
    rows = [
        [section, ", ".join(f"[{ls.number:02d} — {ls.title[lang]}]({ls.stem}.ipynb)" for ls in covered)]
        for section, covered in sections.items()
    ]
    text = TEXT[lang]
    return f"# {text['map']}\n\n{text['map_intro']}\n\n{_table([text['section'], text['lessons']], rows)}\n"


def colon(lang: str) -> str:
    """A colon as the language writes it (French puts a space before it)."""
    return " :" if lang == "fr" else ":"


def kit_page(lessons: list[Lesson], lang: str, figures: dict[str, list[dict]]) -> str:
    """The lecturer kit: per lesson, slide sections, class time per profile, key figures (PNG, SVG) and downloads."""
    text, timings, c = TEXT[lang], load_timings(), colon(lang)
    parts = [f"# {text['kit']}\n\n{text['kit_intro']}\n\n"
             f'<a href="../kit/{lang}-figures.zip" download>{text["all_figures"]}</a>\n']
    for lesson in lessons:
        times = ", ".join(f"{p} {format_time(timings.get(lesson.stem, {}).get(p))}" for p in PROFILES)
        parts.append(f"## {lesson.number:02d} — {lesson.title[lang]}\n\n"
                     f"- {text['slides']}{c} {lesson.slides}\n- {text['time']}{c} {times}\n"
                     f"- [{text['lesson']}]({lesson.stem}.ipynb) · "
                     f'<a href="../downloads/{lang}/exercises/{lesson.stem}.ipynb" download>{text["exercises"]}</a> · '
                     f'<a href="../downloads/{lang}/solutions/{lesson.stem}.ipynb" download>{text["solutions"]}</a>\n')
        cells = []
        for k, _ in enumerate(figures.get(lesson.stem, []), start=1):
            name = f"../kit/{lang}/{lesson.stem}-{k}"
            cells.append(f'<figure class="kit-figure"><a href="{name}.png"><img src="{name}.png" '
                         f'alt="{html.escape(lesson.title[lang])} {k}" width="260"></a>'
                         f'<figcaption><a href="{name}.png">PNG</a> · <a href="{name}.svg">SVG</a></figcaption></figure>')
        if cells:
            parts.append(f"\n{text['figures']}{c}\n\n<div class=\"kit-figures\">\n" + "\n".join(cells) + "\n</div>\n")
    return "\n".join(parts)


def readme_sections(readme: str, headings: tuple[str, ...] = MEASURED_SECTIONS) -> str:
    """The README's sections that start with ``headings`` (each up to the next ``## ``), in order."""
    found = []
    for heading in headings:
        start = readme.find("\n" + heading)
        if start < 0:
            raise SiteError(f"README.md has no section {heading!r}: update course.site.MEASURED_SECTIONS")
        end = readme.find("\n## ", start + 1)
        found.append(readme[start + 1: end if end > 0 else len(readme)].rstrip())
    return "\n\n".join(found)


def _plain_links(markdown: str) -> str:
    """Links to repository files (which the site does not hold) turned into their text; web links kept."""
    return re.sub(r"\[([^\]]+)\]\((?!https?://|#)[^)]+\)", r"\1", markdown)


def sphinx_conf() -> str:
    """The book's ``conf.py``: Jupyter Book's stack (MyST-NB, sphinx-book-theme, sphinx-external-toc) without its
    online parts (Thebe, comments, launch buttons): no execution, offline MathJax, the kit and downloads as files."""
    settings = {
        "project": "La Théorie de la Diffusion Stable — le cours / the course",
        "html_title": "La Théorie de la Diffusion Stable",
        "extensions": ["myst_nb", "sphinx_external_toc", "sphinx_book_theme", "sphinx_copybutton"],
        "external_toc_path": "_toc.yml",
        "external_toc_exclude_missing": False,
        "exclude_patterns": ["_build", "**.ipynb_checkpoints"],
        "nb_execution_mode": "off",  # the solutions were executed by python -m course.build
        "nb_output_stderr": "remove",
        "myst_enable_extensions": ["dollarmath", "amsmath", "html_image", "colon_fence"],
        "mathjax_path": "../mathjax/tex-chtml.js",  # relative to _static: the copy served with the site
        "html_theme": "sphinx_book_theme",
        "html_theme_options": {"home_page_in_toc": True, "show_navbar_depth": 1, "use_download_button": False,
                               "use_fullscreen_button": False, "use_source_button": False, "search_bar_text": "…"},
        "html_context": {"default_mode": "light"},
        "html_static_path": ["_static"],
        "html_extra_path": ["extra"],
        "html_css_files": ["kit.css"],
        "html_favicon": "_static/favicon.svg",  # else the browser asks for /favicon.ico, a 404
        "html_show_copyright": False,
        "html_show_sphinx": False,
        "html_copy_source": False,
        "suppress_warnings": ["myst.header", "myst.xref_missing", "misc.highlighting_failure", "mystnb.unknown_mime_type"],
    }
    always = ("\n\ndef _page_language(app, pagename, templatename, context, doctree):  # <html lang> of fr/… and en/… pages\n"
              f"    if pagename.split('/')[0] in {LANGUAGES!r}:\n"
              "        context['language'] = pagename.split('/')[0]\n"
              "\n\ndef setup(app):\n"
              "    app.set_html_assets_policy('always')  # MathJax on every page: Sphinx misses the maths of the pages' tables\n"
              "    app.connect('html-page-context', _page_language)\n")
    return "# Written by python -m course.site: edit course/site.py, not this file.\n" + "".join(
        f"{key} = {value!r}\n" for key, value in settings.items()) + always


def toc_yaml(lessons: list[Lesson]) -> str:
    """sphinx-external-toc's ``_toc.yml`` (Jupyter Book's table of contents): the home page, then each language's contents, lessons and lecturer pages."""
    lines = ["root: index", "subtrees:"]
    for lang in LANGUAGES:
        lines += [f"  - caption: {LANGUAGE_NAMES[lang]}", "    entries:", f"      - file: {lang}/index"]
        lines += [f"      - file: {lang}/{lesson.stem}" for lesson in lessons]
        lines += [f"      - file: {lang}/slides", f"      - file: {lang}/kit"]
    lines += ["  - caption: Errata, measurements / mesures", "    entries:", "      - file: errata", "      - file: measured"]
    return "\n".join(lines) + "\n"


def home_page(lessons: list[Lesson]) -> str:
    """The site's first page: the two languages."""
    return (
        "# La Théorie de la Diffusion Stable — le cours / the course\n\n"
        "Stable Diffusion construit pièce par pièce, en PyTorch, d'après les diapositives « La Théorie de la Diffusion "
        f"Stable » ({len(lessons)} leçons). — Stable Diffusion built piece by piece in PyTorch, following the slides.\n\n"
        "- [Français : sommaire](fr/index.md)\n- [English: contents](en/index.md)\n"
    )


FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" fill="#111"/>'
           '<circle cx="8" cy="8" r="5" fill="#e33"/></svg>\n')  # a red circle on black, like the course's scenes
KIT_CSS = (
    ".kit-figures { display: flex; flex-wrap: wrap; gap: 1em; }\n"
    ".kit-figure { margin: 0; text-align: center; }\n"
    ".kit-figure img { border: 1px solid #ddd; }\n"
)


MATHJAX_PARTS = ("tex-chtml.js", "a11y", "adaptors", "input", "output", "ui")  # what tex-chtml.js loads; not the speech engine


def mathjax_folder() -> Path:
    """The MathJax 3 files shipped by the PyPI package ``sphinx-mathjax-offline``."""
    from importlib import metadata

    try:
        folder = Path(metadata.distribution("sphinx-mathjax-offline").locate_file("sphinx-mathjax-offline/static/mathjax"))
    except metadata.PackageNotFoundError:
        raise SiteError("sphinx-mathjax-offline is not installed (it carries MathJax for offline maths): pip install -e \".[dev]\"") from None
    if not (folder / "tex-chtml.js").exists():
        raise SiteError(f"{folder} has no tex-chtml.js: reinstall sphinx-mathjax-offline")
    return folder


def copy_mathjax(static: Path) -> None:
    """MathJax's TeX → HTML component and what it loads, into ``static/mathjax`` (served as ``mathjax/``)."""
    source = mathjax_folder()
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, static / "mathjax" / part)
        else:
            (static / "mathjax").mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, static / "mathjax" / part)


def stage(out: Path, lessons: list[Lesson] | None = None) -> Path:
    """Write the book's sources into ``out/src``: pages, the site's notebooks, the kit and the downloads."""
    root = repo_root()
    lessons = lessons if lessons is not None else available_lessons()
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "_static").mkdir(parents=True)
    (src / "_static" / "kit.css").write_text(KIT_CSS)
    (src / "_static" / "favicon.svg").write_text(FAVICON)
    copy_mathjax(src / "extra")  # served as /mathjax/
    extra = src / "extra"
    for lang in LANGUAGES:
        (src / lang).mkdir()
        (extra / "kit" / lang).mkdir(parents=True)
        figures = {}
        for lesson in lessons:
            solution = lesson.notebook("solutions", lang)
            if not solution.exists():
                raise SiteError(f"{solution.relative_to(root)} is missing: run python -m course.build first")
            nb = nbformat.read(solution, as_version=4)
            if not nb.metadata.get("course", {}).get("executed"):
                raise SiteError(f"{solution.relative_to(root)} has no executed outputs: run python -m course.build first")
            nbformat.write(site_notebook(nb, lesson, lang), src / lang / f"{lesson.stem}.ipynb")
            figures[lesson.stem] = key_figures(nb)
            for k, figure in enumerate(figures[lesson.stem], start=1):
                (extra / "kit" / lang / f"{lesson.stem}-{k}.png").write_bytes(figure["png"])
                if figure["svg"] is not None:  # every shipped key figure has one (tests/test_site.py)
                    (extra / "kit" / lang / f"{lesson.stem}-{k}.svg").write_text(figure["svg"])
            for edition, folder in (("notebooks", "exercises"), ("solutions", "solutions")):
                target = extra / "downloads" / lang / folder
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(lesson.notebook(edition, lang), target / f"{lesson.stem}.ipynb")
        shutil.make_archive(str(extra / "kit" / f"{lang}-figures"), "zip", extra / "kit", lang)
        (src / lang / "index.md").write_text(index_page(lessons, lang))
        (src / lang / "slides.md").write_text(slides_page(lessons, lang))
        (src / lang / "kit.md").write_text(kit_page(lessons, lang, figures))
    (src / "index.md").write_text(home_page(lessons))
    (src / "errata.md").write_text(_plain_links((root / "ERRATA.md").read_text()))
    measured = readme_sections((root / "README.md").read_text())
    (src / "measured.md").write_text("# Measured tables / Tableaux mesurés\n\nFrom the README.\n\n" + _plain_links(measured) + "\n")
    (src / "conf.py").write_text(sphinx_conf())
    (src / "_toc.yml").write_text(toc_yaml(lessons))
    return src


def build_site(out: str | Path = "site", lessons: list[Lesson] | None = None) -> Path:
    """Stage the sources and build them with Sphinx and MyST-NB (offline); returns the folder of the HTML pages."""
    out = Path(out).resolve()
    src = stage(out, lessons)
    html_dir = out / "_build" / "html"
    if html_dir.exists():
        shutil.rmtree(html_dir)
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(html_dir)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not (html_dir / "index.html").exists():
        last = [line for line in (done.stderr + done.stdout).strip().splitlines() if line.strip()][-3:]
        raise SiteError("the site's build (sphinx with MyST-NB) failed: " + " / ".join(last))
    (out / "build.log").write_text(done.stdout + done.stderr)
    return html_dir


def folder_size(path: Path) -> int:
    """Bytes under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.site", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="site", help="output folder (default: site/; the pages go to site/_build/html)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        html_dir = build_site(args.out)
    except SiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    pages = len(list(html_dir.rglob("*.html")))
    print(json.dumps({"pages": pages, "size_mb": round(folder_size(html_dir) / 1e6, 1),
                      "seconds": round(time.perf_counter() - start, 1)}))
    print(f"open {html_dir / 'index.html'}  (or: python -m http.server -d {html_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
