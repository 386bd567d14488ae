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
    assert conda == declared
    pip_part = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_part


def test_requirements_are_ranges_not_pins():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert "==" not in requirement, f"{requirement}: pins would replace Colab's own CUDA torch"


def test_main_command_runs_offline():
    result = subprocess.run([sys.executable, "-m", "course"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✅ torch" in result.stdout and "01  The forward process" in result.stdout
    assert "profile" in result.stdout
