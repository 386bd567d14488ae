"""One source per lesson: the transforms, and the generated editions on disk are fresh and consistent."""

import sys
import nbformat
import pytest

from course.build import BuildError, exercise_code, make_edition, read_source, repository_url, solution_code, stale_files
from course.lessons import LANGUAGES, LESSONS, available_lessons

SOURCE = """def f(x):
    # BEGIN SOLUTION
    # HINT: add one
    y = x + 1
    return y
    # END SOLUTION


# NBVAL_CHECK_OUTPUT
check(f)"""


def test_solution_code_drops_markers_and_hints():
    assert solution_code(SOURCE) == "def f(x):\n    y = x + 1\n    return y\n\n\n# NBVAL_CHECK_OUTPUT\ncheck(f)"


def test_exercise_code_keeps_hints_and_stubs_the_region():
    code = exercise_code(SOURCE)
    assert code == (
        "def f(x):\n    # ✏️ EXERCISE — your code here\n    # HINT: add one\n    raise NotImplementedError\n\n\ncheck(f)"
    )
    compile(code, "exercise", "exec")


def test_hints_and_the_exercise_mark_follow_the_edition_language():
    source = ("def f(x):\n    # BEGIN SOLUTION\n    # HINT[en]: add one\n    # HINT[fr]: ajoutez un\n    return x + 1\n"
              "    # END SOLUTION\n")
    assert exercise_code(source, lang="fr") == ("def f(x):\n    # ✏️ EXERCICE — votre code ici\n    # INDICE : ajoutez un\n"
                                                 "    raise NotImplementedError")
    assert "# HINT: add one" in exercise_code(source, lang="en") and "ajoutez" not in exercise_code(source, lang="en")
    assert solution_code(source) == "def f(x):\n    return x + 1"


def test_custom_stub():
    code = exercise_code("# BEGIN SOLUTION\n# STUB: x_t = ...\nx_t = 1\n# END SOLUTION")
    assert code.splitlines()[-1] == "x_t = ..."


@pytest.mark.parametrize(
    "bad, message",
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "without"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "nested"),
    ],
)
def test_unbalanced_markers_are_reported(bad, message):
    with pytest.raises(BuildError, match=message):
        exercise_code(bad, "lesson.py, cell 3")


def test_generated_files_are_fresh():
    """Fails when a lesson source, a `course` module a lesson imports or a `data/` manifest changed without
    `python -m course.build` (or a notebook was hand-edited): each problem names the file and the command."""
    assert stale_files() == []


def test_registry_matches_the_sources():
    stems = {lesson.stem for lesson in LESSONS}
    from course.paths import repo_root

    on_disk = {p.stem for p in (repo_root() / "lessons").glob("[0-9][0-9]_*.py")}
    assert on_disk <= stems, f"lesson sources without a registry entry: {on_disk - stems}"
    assert {lesson.number for lesson in available_lessons()} >= {0, 1}


@pytest.mark.parametrize("lesson", available_lessons(), ids=lambda lesson: lesson.stem)
def test_editions_are_consistent(lesson):
    editions = {
        (e, lang): nbformat.read(lesson.notebook(e, lang), as_version=4) for e in ("notebooks", "solutions") for lang in LANGUAGES
    }
    def without_hints(code: str) -> str:  # the exercise mark and hint lines are in the edition's language
        return "\n".join(line for line in code.splitlines() if not line.strip().startswith(("# ✏️", "# HINT: ", "# INDICE : ")))

    for edition in ("notebooks", "solutions"):
        code = [[without_hints(c.source) for c in editions[(edition, lang)].cells[2:] if c.cell_type == "code"] for lang in LANGUAGES]
        assert code[0] == code[1], f"{edition}: code cells differ between languages (beyond hints)"
        fr_text = "".join(c.source for c in editions[(edition, "fr")].cells if c.cell_type == "markdown")
        en_text = "".join(c.source for c in editions[(edition, "en")].cells if c.cell_type == "markdown")
        assert fr_text != en_text
    for (edition, lang), nb in editions.items():
        first, setup = nb.cells[0], nb.cells[1]
        assert "colab-badge.svg" in first.source and f"{edition}/{lang}/{lesson.stem}.ipynb" in first.source
        assert repository_url() in setup.source and '"google.colab" in sys.modules' in setup.source
        assert f'os.environ["COURSE_LANG"] = "{lang}"' in setup.source  # the edition's language, before any course code runs
    solutions = editions[("solutions", "en")]
    assert any("# NBVAL_CHECK_OUTPUT" in c.source for c in solutions.cells if c.cell_type == "code")
    exercises = editions[("notebooks", "en")]
    assert not any("NBVAL_CHECK_OUTPUT" in c.source for c in exercises.cells)
    assert not any(c.get("outputs") for c in exercises.cells if c.cell_type == "code")
    source = read_source(lesson)
    n_regions = sum(c.source.count("# BEGIN SOLUTION") for c in source.cells if c.cell_type == "code")
    assert sum(c.source.count("raise NotImplementedError") for c in exercises.cells) >= n_regions
    assert not any("BEGIN SOLUTION" in c.source for nb in editions.values() for c in nb.cells)


def test_code_cells_cannot_be_language_specific():
    source = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"lang": "fr"})])
    with pytest.raises(BuildError, match="shared by all languages"):
        make_edition(source, available_lessons()[0], "fr", "solutions")


def test_carried_outputs_keep_their_widget_state():
    from course.build import _carry_outputs, execution_record

    lesson = available_lessons()[0]
    source = read_source(lesson)
    old, new = make_edition(source, lesson, "en", "solutions"), make_edition(source, lesson, "en", "solutions")
    old.metadata["course"]["executed"] = execution_record(old, "cpu")
    old.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    old.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    assert _carry_outputs(new, old)
    assert new.metadata["widgets"] == old.metadata["widgets"] and new.metadata["language_info"]["version"] == "3.11.7"


@pytest.mark.parametrize("lesson", available_lessons(), ids=lambda lesson: lesson.stem)
def test_fingerprints_survive_a_write_and_a_read(lesson, tmp_path):
    """The fingerprint recorded at generation matches the notebook read back, so an untouched notebook is
    never taken for a learner's work; and every lesson's imports resolve to `course` files."""
    from course.build import dependency_hashes, edited_reason, expected_editions

    for (edition, lang), nb in expected_editions(lesson).items():
        path = tmp_path / f"{edition}-{lang}.ipynb"
        nbformat.write(nb, path)
        assert edited_reason(nbformat.read(path, as_version=4), edition) is None
    deps = dependency_hashes(expected_editions(lesson)[("solutions", "en")])
    assert "course/__init__.py" in deps and any(p.startswith("data/") for p in deps)


def test_numbers_in_prose_are_read_from_the_shipped_json(tmp_path):
    from course.build import fill_numbers

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bench.json").write_text('{"rows": [{"rate": 0.9219, "n": 12800, "gap": 44.06}]}')
    text = "one object {{bench.json:rows.0.rate|pct1}}, n = {{bench.json:rows.0.n|int}}, gap {{ bench.json:rows.0.gap|num1 }} points"
    assert fill_numbers(text, "en", "here", tmp_path) == "one object 92.2 %, n = 12,800, gap 44.1 points"
    assert fill_numbers(text, "fr", "here", tmp_path) == "one object 92,2 %, n = 12 800, gap 44,1 points"
    for bad, message in [("{{missing.json:a|pct0}}", "data/missing.json, which does not exist"),
                         ("{{bench.json:rows.3.rate|pct0}}", "has no '3' on the way to 'rows.3.rate'"),
                         ("{{bench.json:rows.0|pct0}}", "is not a number"),
                         ("{{bench.json:rows.0.rate|percent}}", "unknown number format 'percent'")]:
        with pytest.raises(BuildError, match=message):
            fill_numbers(bad, "en", "here", tmp_path)


def _colab_cell(tmp_path, lang: str) -> str:
    """The setup cell as Colab runs it, with /content in ``tmp_path``, an unreachable repository and no course installed."""
    from course.build import header_cells, repository_url

    source = header_cells(available_lessons()[0], lang, "notebooks")[1].source
    assert '"/content' in source and repository_url() in source and 'importlib.util.find_spec("course") is not None' in source
    return (source.replace('"/content', f'"{tmp_path}').replace(repository_url(), f"file://{tmp_path}/nowhere")
            .replace('importlib.util.find_spec("course") is not None', "False"))


def _run_colab_cell(source: str, monkeypatch) -> Exception:
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("COURSE_LANG", "en")
    with pytest.raises(Exception) as caught:
        exec(compile(source, "setup-cell", "exec"), {})
    return caught.value


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_colab_setup_cell_says_in_one_sentence_what_failed_and_what_to_do(tmp_path, monkeypatch, lang):
    err = _run_colab_cell(_colab_cell(tmp_path, lang), monkeypatch)
    message = str(err)
    assert type(err).__name__ == "SetupError" and err._render_traceback_() == [message]  # IPython shows no traceback
    assert "\n" not in message and f"file://{tmp_path}/nowhere" in message and "course-*.whl" in message
    assert ("Téléversez" in message) == (lang == "fr") and ("Upload" in message) == (lang == "en")
    assert "nowhere" in message.split("(", 1)[1]  # git's own last line says why


def test_colab_setup_cell_installs_an_uploaded_wheel_first(tmp_path, monkeypatch):
    wheel = tmp_path / "course-0.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not a zip")  # pip refuses it: the message names the wheel, not the repository
    err = _run_colab_cell(_colab_cell(tmp_path, "en"), monkeypatch)
    assert type(err).__name__ == "SetupError" and str(wheel) in str(err) and "nowhere" not in str(err)
