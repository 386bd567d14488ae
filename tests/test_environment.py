"""environment.yml (conda) declares exactly the requirements of pyproject.toml; the CLI runs offline."""

import re
import subprocess
import sys
import tomllib

import yaml

from course.paths import repo_root

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name → conda-forge name where they differ


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", requirement.strip()).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    declared = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    declared = {CONDA_NAMES.get(name, name): spec for name, spec in declared.items()}
    env = yaml.safe_load((repo_root() / "environment.yml").read_text())
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",) and not d.startswith("python="))
    pip_part = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_pip = dict(_split(d) for d in pip_part if d != "-e .")  # what conda-forge lacks
    assert not set(conda) & set(from_pip)
    assert {**conda, **from_pip} == declared
    assert "-e ." in pip_part


def test_readme_puts_the_install_choice_first_and_ci_follows_it():
    readme = (repo_root() / "README.md").read_text()
    quick = readme[readme.index("## Quick start"):readme.index("## Open the course")]
    cpu, cuda = quick.index("without an NVIDIA GPU"), quick.index("with an NVIDIA GPU")
    assert "--index-url https://download.pytorch.org/whl/cpu" in quick[cpu:cuda], "the CPU path installs torch's CPU build first"
    first_command = quick.index("`pip install")
    assert first_command > cpu, "a command comes before the reader chose their machine"
    assert 'pip install -e ".[dev]"' in quick[cuda:]
    ci = (repo_root() / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci, ".ci/run no longer installs the way the README says"


def test_requirements_are_ranges_not_pins():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "==" not in requirement, f"{requirement}: pins would replace Colab's own CUDA torch"


def test_main_command_runs_offline():
    result = subprocess.run([sys.executable, "-m", "course"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✅ torch" in result.stdout and "01  The forward process" in result.stdout
    assert "profile" in result.stdout


def test_generate_explains_what_is_missing_or_bad(tmp_path):
    from course import ldm
    from course.paths import data_dir

    result = subprocess.run([sys.executable, "-m", "course", "generate", "un cercle rouge", "-o", str(tmp_path / "x.png")],
                            capture_output=True, text=True, timeout=120)
    if not (data_dir() / ldm.CHECKPOINT).exists():
        assert result.returncode == 1 and "not shipped yet" in result.stderr and "Traceback" not in result.stderr
    else:
        assert result.returncode == 0, result.stderr
    bad = subprocess.run([sys.executable, "-m", "course", "generate", "un cercle rouge", "-o", str(tmp_path / "x.gif")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
