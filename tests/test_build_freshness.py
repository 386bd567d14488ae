"""The build on a temporary repository: outputs go stale when a course module or a data manifest they
depend on changes (not when an unrelated one does), and a generated notebook someone edited is never
silently replaced."""

import json

import nbformat
import pytest

import course.build as build_module
import course.lessons as lessons_module
from course.build import (
    BuildError,
    _carry_outputs,
    build,
    code_hash,
    course_modules,
    execution_record,
    main,
    stale_files,
    stale_reason,
)

LESSON = '''# %% [markdown] lang="fr"
# # Visite
# %% [markdown] lang="en"
# # Tour
# %%
from course.alpha import double

# %%
def my_double(x):
    # BEGIN SOLUTION
    # HINT: times two
    return double(x)
    # END SOLUTION


print(my_double(2))
'''

MODULES = {
    "course/__init__.py": '"""The package."""\n',
    "course/alpha.py": "from course.beta import TWO\n\n\ndef double(x):\n    return TWO * x\n",
    "course/beta.py": "TWO = 2\n",
    "course/unrelated.py": "import course.alpha\n",  # imports a dependency, but nothing imports it
    "course/sub/__init__.py": "",
    "course/sub/inner.py": "from . import helper\nfrom ..beta import TWO\n\n\ndef lazy():\n    from course import gamma\n",
    "course/sub/helper.py": "",
    "course/gamma.py": "",
}


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def runs():
    """The languages of the solution editions the (fake) kernel executed, in order."""
    return []


@pytest.fixture
def tree(tmp_path, monkeypatch, runs):
    """A repository with one lesson (00_tour), a tiny `course` package and two data manifests."""
    _write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "x"\n[project.urls]\nRepository = "https://github.com/someone/course"\n',
            "README.md": "# Course\n<!-- lessons:start -->\n<!-- lessons:end -->\n",
            "lessons/00_tour.py": LESSON,
            "data/model.json": json.dumps({"sha256": "aaa"}),
            "data/tokenizer/tokenizer.json": "{}",
            "data/model.safetensors": "weights",
            **MODULES,
        },
    )
    monkeypatch.setattr(build_module, "repo_root", lambda: tmp_path)
    monkeypatch.setattr(lessons_module, "repo_root", lambda: tmp_path)

    def fake_execute(nb, workdir, profile, timeout=3600):
        runs.append(nb.metadata["course"]["lang"])
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"run {len(runs)}\n")]
            cell.execution_count = i + 1
        return 0.5

    monkeypatch.setattr(build_module, "execute", fake_execute)
    return tmp_path


def _read(path):
    return nbformat.read(path, as_version=4)


# ----------------------------------------------------------------------------- what a lesson depends on


def test_course_modules_follow_imports_transitively(tree):
    assert course_modules(["from course.alpha import double"]) == ["course", "course.alpha", "course.beta"]
    # relative imports, `from package import module`, imports inside functions, parents of submodules
    assert course_modules(["import course.sub.inner as inner"]) == [
        "course", "course.beta", "course.gamma", "course.sub", "course.sub.helper", "course.sub.inner",
    ]
    # IPython magics and shell lines do not stop the parse; other packages are not followed
    assert course_modules(["%matplotlib inline\n!ls\nimport torch\nfrom course import gamma"]) == ["course", "course.gamma"]


def test_a_cell_that_does_not_parse_is_named(tree):
    with pytest.raises(BuildError, match="lessons/00_tour.py: code cell 2 does not parse"):
        course_modules(["x = 1", "def f(:"], where="lessons/00_tour.py")


def test_the_record_lists_modules_and_every_data_manifest(tree):
    build()
    executed = _read(tree / "solutions/fr/00_tour.ipynb").metadata["course"]["executed"]
    assert set(executed) == {"profile", "code_sha256", "deps_sha256", "deps"}
    assert sorted(executed["deps"]) == [
        "course/__init__.py", "course/alpha.py", "course/beta.py", "data/model.json", "data/tokenizer/tokenizer.json",
    ]
    en = _read(tree / "solutions/en/00_tour.ipynb").metadata["course"]["executed"]  # each language runs on its own kernel
    assert en["deps"] == executed["deps"] and en["code_sha256"] != executed["code_sha256"]  # the setup cell sets COURSE_LANG


# ----------------------------------------------------------------------------- staleness


def test_fresh_after_a_build_and_outputs_carried_when_nothing_changed(tree, runs):
    build()
    assert runs == ["fr", "en"] and stale_files() == []
    build()
    assert runs == ["fr", "en"], "nothing changed: the outputs must be carried, not re-executed"
    assert _read(tree / "solutions/en/00_tour.ipynb").cells[3].outputs[0].text == "run 2\n"


def test_a_changed_dependency_module_makes_the_outputs_stale(tree, runs):
    build()
    (tree / "course/beta.py").write_text("TWO = 3\n")
    assert stale_files() == [
        f"solutions/{lang}/00_tour.ipynb: outputs are stale: course/beta.py changed since it was executed; "
        "run python -m course.build --lesson 0"
        for lang in ("fr", "en")
    ]
    build()
    assert runs == ["fr", "en", "fr", "en"] and stale_files() == []


def test_an_unrelated_module_changes_nothing(tree, runs):
    build()
    (tree / "course/unrelated.py").write_text("import course.alpha\nX = 1\n")
    (tree / "course/new_module.py").write_text("Y = 2\n")
    (tree / "data/model.safetensors").write_text("other weights")  # the manifest holds their sha256
    assert stale_files() == []
    build()
    assert runs == ["fr", "en"]


def test_a_changed_data_manifest_makes_the_outputs_stale(tree):
    build()
    (tree / "data/model.json").write_text(json.dumps({"sha256": "bbb"}))
    problems = stale_files()
    assert len(problems) == 2 and all("data/model.json changed since it was executed" in p for p in problems)


def test_a_newly_imported_module_is_named(tree):
    build()
    (tree / "course/alpha.py").write_text("from course.beta import TWO\nimport course.gamma\n\n\ndef double(x):\n    return TWO * x\n")
    problem = stale_files()[0]
    assert "course/alpha.py changed, course/gamma.py is newly used since it was executed" in problem


def test_outputs_recorded_with_the_code_hash_only_are_stale_once(tree, runs):
    build()
    path = tree / "solutions/fr/00_tour.ipynb"
    nb = _read(path)
    nb.metadata["course"]["executed"] = {"profile": "cpu", "code_sha256": code_hash(nb)}  # an older build's record
    nbformat.write(nb, path)
    assert "executed before the build recorded its course/ modules" in stale_files()[0]
    expected = build_module.expected_editions(lessons_module.available_lessons()[0])[("solutions", "fr")]
    assert not _carry_outputs(expected, nb)
    build()
    assert runs == ["fr", "en", "fr"] and stale_files() == []  # only the French edition's record was old


def test_carrying_needs_both_code_and_dependencies(tree):
    lesson = lessons_module.available_lessons()[0]
    editions = build_module.expected_editions(lesson)
    old, new = editions[("solutions", "fr")], build_module.expected_editions(lesson)[("solutions", "fr")]
    old.metadata["course"]["executed"] = execution_record(old, "cpu")
    assert stale_reason(old.metadata["course"]["executed"], new) is None
    (tree / "course/beta.py").write_text("TWO = 4\n")
    assert not _carry_outputs(new, old)  # same code, a dependency changed
    old.metadata["course"]["executed"] = execution_record(old, "cpu")
    old.cells[-1].source += "\nprint('edited')"  # the record says one code, the cells hold another
    assert not _carry_outputs(new, old)
    old.cells[-1].source = new.cells[-1].source
    assert _carry_outputs(new, old)


# ----------------------------------------------------------------------------- nothing lost


def _edit_cell(path, text="def my_double(x):\n    return x + x  # my answer"):
    nb = _read(path)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "my_double" in c.source)
    cell.source = text
    nbformat.write(nb, path)
    return path.read_bytes()


def test_an_edited_exercise_notebook_is_not_overwritten(tree):
    build()
    mine = _edit_cell(tree / "notebooks/fr/00_tour.ipynb")
    other = (tree / "notebooks/en/00_tour.ipynb").read_bytes()
    (tree / "lessons/00_tour.py").write_text(LESSON.replace("times two", "multiply by 2"))  # a new source to build
    message = (
        "notebooks/fr/00_tour.ipynb was edited since it was generated (your work?): "
        "copy it elsewhere, or rerun with --overwrite to replace it"
    )
    with pytest.raises(BuildError) as err:
        build()
    assert str(err.value) == message
    assert (tree / "notebooks/fr/00_tour.ipynb").read_bytes() == mine
    assert (tree / "notebooks/en/00_tour.ipynb").read_bytes() == other, "nothing is written when the build refuses"
    assert any(p.startswith("notebooks/fr/00_tour.ipynb: was edited since it was generated (your work?)") for p in stale_files())
    build(overwrite=True)
    assert "multiply by 2" in (tree / "notebooks/fr/00_tour.ipynb").read_text()
    assert stale_files() == []


def test_an_executed_exercise_notebook_is_a_learners_work_too(tree):
    build()
    path = tree / "notebooks/en/00_tour.ipynb"
    nb = _read(path)
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="4\n")]
    nb.cells[3].execution_count = 1
    nbformat.write(nb, path)
    with pytest.raises(BuildError, match=r"notebooks/en/00_tour.ipynb holds outputs \(someone ran it\)"):
        build()
    assert "holds outputs" in stale_files()[0]


def test_solution_editions_are_compared_on_their_sources(tree):
    build()
    path = tree / "solutions/en/00_tour.ipynb"
    nb = _read(path)
    nb.cells[3].outputs = []  # outputs differ: the build wrote them, it may replace them
    nbformat.write(nb, path)
    build()
    _edit_cell(path)
    with pytest.raises(BuildError, match="solutions/en/00_tour.ipynb was edited since it was generated"):
        build()


def test_several_edited_files_in_one_sentence(tree):
    build()
    for lang in ("fr", "en"):
        _edit_cell(tree / f"notebooks/{lang}/00_tour.ipynb")
    with pytest.raises(BuildError, match=r"fr/00_tour.ipynb was edited .*, notebooks/en/00_tour.ipynb was edited .*copy them"):
        build()


def test_a_notebook_without_fingerprint_is_replaced_only_if_unchanged(tree):
    build()
    path = tree / "notebooks/fr/00_tour.ipynb"
    nb = _read(path)
    del nb.metadata["course"]["generated_sha256"]  # written by an older build
    nbformat.write(nb, path)
    assert stale_files() == [
        "notebooks/fr/00_tour.ipynb: has no build fingerprint (written by an older build); run python -m course.build --lesson 0"
    ]
    build()  # same cells: nothing to lose
    assert "generated_sha256" in _read(path).metadata["course"]
    nb = _read(path)
    del nb.metadata["course"]["generated_sha256"]
    nb.cells[3].source = "my work"
    nbformat.write(nb, path)
    with pytest.raises(BuildError, match="has no build fingerprint"):
        build()


def test_cli_prints_one_line_and_exits_1(tree, capsys):
    build()
    mine = _edit_cell(tree / "notebooks/fr/00_tour.ipynb")
    assert main(["--lesson", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: notebooks/fr/00_tour.ipynb was edited since it was generated (your work?)")
    assert (tree / "notebooks/fr/00_tour.ipynb").read_bytes() == mine
    assert main(["--check"]) == 1
    assert "notebooks/fr/00_tour.ipynb: was edited" in capsys.readouterr().out
    assert main(["--lesson", "0", "--overwrite"]) == 0
    assert main(["--check"]) == 0
    assert main(["--lesson", "9"]) == 1
    assert "no lesson source for --lesson 9: available lessons are 0" in capsys.readouterr().err


def test_generation_is_deterministic(tree):
    build()
    first = {p: p.read_bytes() for p in tree.glob("*/*/00_tour.ipynb")}
    build()
    assert {p: p.read_bytes() for p in tree.glob("*/*/00_tour.ipynb")} == first
