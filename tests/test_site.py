"""The course site (course/site.py): built offline from the executed solutions, then opened in headless Chromium.

The browser checks need Debian's chromium (``.ci/run`` installs it); without it they skip on a laptop and
fail in CI (``CI=true``), so CI cannot pass without having looked at the pages.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import nbformat
import pytest

from course import site
from course.build import KEY_FIGURE
from course.lessons import LANGUAGES, available_lessons

LESSONS = available_lessons()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium as root in a closed network: no sandbox, and none of its background connections (refused here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


# ----------------------------------------------------------------------------- without a browser


def test_every_lesson_has_key_figures_with_svg():
    for lesson in LESSONS:
        for lang in LANGUAGES:
            nb = nbformat.read(lesson.notebook("solutions", lang), as_version=4)
            tagged = [c for c in nb.cells if KEY_FIGURE in c.metadata.get("tags", [])]
            figures = site.key_figures(nb)
            assert tagged, f"{lesson.stem}: no cell tagged {KEY_FIGURE!r} (the lecturer kit would be empty)"
            assert len(figures) >= len(tagged), f"{lesson.stem} [{lang}]: a key-figure cell shows no figure"
            assert all(f["svg"] and f["svg"].lstrip().startswith(("<?xml", "<svg")) for f in figures), \
                f"{lesson.stem} [{lang}]: a key figure has no SVG: rebuild it (python -m course.build --force --lesson {lesson.number})"
            others = [o for c in nb.cells if c.cell_type == "code" and c not in tagged for o in c.get("outputs", [])]
            assert not any("image/svg+xml" in o.get("data", {}) for o in others), "only key figures keep an SVG copy"


def test_site_notebook_has_a_language_switch_and_no_network_image():
    lesson = LESSONS[0]
    nb = nbformat.read(lesson.notebook("solutions", "fr"), as_version=4)
    nb.cells[3].setdefault("outputs", []).append(nbformat.v4.new_output(
        "display_data", data={site.WIDGET_MIME: {"model_id": "x"}, "text/plain": "bar"}))
    staged = site.site_notebook(nb, lesson, "fr")
    assert staged.cells[0].source.startswith("# Setup:") and "remove-cell" in staged.cells[0].metadata["tags"]
    assert staged.cells[2].source.startswith(f"# {lesson.number:02d}")  # the language switch, then the title
    header = staged.cells[1].source
    assert f"(../en/{lesson.stem}.ipynb)" in header and "Read in English" in header
    assert not any("colab-badge.svg" in c.source for c in staged.cells)  # the badge image is fetched from the web
    assert site.WIDGET_MIME not in str(staged.cells[3].outputs) and "widgets" not in staged.metadata
    assert len(staged.cells) == len(nb.cells)


def test_readme_sections_and_links():
    text = "intro\n## A\nkeep [data](data/README.md) and [web](https://x.org)\n## B\nno\n## C\nlast\n"
    assert site.readme_sections(text, ("## A", "## C")) == "## A\nkeep [data](data/README.md) and [web](https://x.org)\n\n## C\nlast"
    assert site._plain_links("[data](data/README.md) [web](https://x.org)") == "data [web](https://x.org)"
    with pytest.raises(site.SiteError, match="no section"):
        site.readme_sections(text, ("## Z",))


def test_slides_map_lists_every_section_of_every_lesson():
    page = site.slides_page(LESSONS, "en")
    for lesson in LESSONS:
        for section in site.slide_sections(lesson):
            assert f"| {section} |" in page


# ----------------------------------------------------------------------------- the built site, in a browser


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    return site.build_site(tmp_path_factory.mktemp("site"))


def test_site_has_every_page_and_the_kit(html_dir):
    for lang in LANGUAGES:
        for page in ("index", "slides", "kit", *(lesson.stem for lesson in LESSONS)):
            assert (html_dir / lang / f"{page}.html").exists(), f"{lang}/{page}.html was not built"
        assert (html_dir / "kit" / f"{lang}-figures.zip").stat().st_size > 10_000
        for lesson in LESSONS:
            assert (html_dir / "kit" / lang / f"{lesson.stem}-1.svg").exists()
            assert (html_dir / "downloads" / lang / "exercises" / f"{lesson.stem}.ipynb").exists()
    assert (html_dir / "mathjax" / "tex-chtml.js").exists()
    for page in html_dir.rglob("*.html"):  # nothing fetched from another host
        text = page.read_text()
        for needle in ('src="http', "src='http", 'href="https://cdn', "unpkg.com", "cdn.jsdelivr"):
            assert needle not in text, f"{page.relative_to(html_dir)} loads {needle}…"


@pytest.fixture(scope="module")
def served(html_dir):
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium): the browser checks need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _open(browser, url: str):
    """The page at ``url`` once MathJax has typeset it, with what went wrong while it loaded."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}"))
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)")
    page.evaluate("() => window.MathJax ? window.MathJax.startup.promise : null")
    return page, problems


def _pages():
    for lang in LANGUAGES:
        yield f"{lang}/index.html"
        yield f"{lang}/slides.html"
        yield f"{lang}/kit.html"
        for lesson in LESSONS:
            yield f"{lang}/{lesson.stem}.html"
    yield "index.html"
    yield "errata.html"
    yield "measured.html"


def test_every_page_renders_figures_and_maths_without_errors(browser, served):
    report = {}
    for path in _pages():
        page, problems = _open(browser, f"{served}/{path}")
        broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        images = page.evaluate("() => document.images.length")
        maths = page.evaluate("() => document.querySelectorAll('.math').length")
        typeset = page.evaluate("() => document.querySelectorAll('.math mjx-container, mjx-container.MathJax').length")
        raw = page.evaluate("() => [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container')).length")
        report[path] = (images, maths, typeset)
        if path.split("/")[0] in LANGUAGES:
            assert page.evaluate("() => document.documentElement.lang") == path.split("/")[0], f"{path}: <html lang> is not its language"
        assert not problems, f"{path}: {problems[:3]}"
        assert not broken, f"{path}: broken images {broken[:3]}"
        assert raw == 0, f"{path}: {raw} of {maths} formulas were not typeset by MathJax"
        if path.endswith(tuple(f"{lesson.stem}.html" for lesson in LESSONS)):
            assert images >= 1, f"{path}: a lesson page without a figure"
        page.close()
    lesson_pages = [f"{lang}/{lesson.stem}.html" for lang in LANGUAGES for lesson in LESSONS]
    assert sum(report[p][1] > 0 for p in lesson_pages) >= len(lesson_pages) // 2, f"few lesson pages have maths: {report}"
    assert report["fr/kit.html"][0] >= len(LESSONS) and report["en/kit.html"][0] >= len(LESSONS)


def test_language_switch_and_contents_links(browser, served):
    lesson = next(ls for ls in LESSONS if ls.number == 5) if any(ls.number == 5 for ls in LESSONS) else LESSONS[-1]
    page, problems = _open(browser, f"{served}/fr/{lesson.stem}.html")
    page.click("text=Read in English")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/en/{lesson.stem}.html"), page.url
    assert page.locator("h1").first.inner_text().startswith(f"{lesson.number:02d}")
    page.click("text=Lire en français")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/fr/{lesson.stem}.html"), page.url
    assert not problems, problems
    page.close()
    contents, problems = _open(browser, f"{served}/en/index.html")
    links = contents.evaluate("() => [...document.querySelectorAll('article a')].map(a => a.getAttribute('href'))")
    for stem in (ls.stem for ls in LESSONS):
        assert f"{stem}.html" in links, f"the English contents do not link to {stem}"
    svg = contents.request.get(f"{served}/kit/en/{LESSONS[0].stem}-1.svg")
    assert svg.ok and svg.text().lstrip().startswith(("<?xml", "<svg"))
    contents.close()
