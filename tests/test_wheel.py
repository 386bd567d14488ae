"""The wheel that carries the course and its data (course/wheel.py): built, installed in a fresh venv, used.

The fresh venv gets the wheel with ``--no-deps``; its dependencies (torch…) are this environment's, seen
through a ``.pth`` path (a second 5 GB torch would cost minutes). ``course`` itself, and ``data/``, come
from the wheel only: the test checks where they were imported from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from course import wheel
from course.paths import repo_root


def test_staging_pyproject_declares_the_data_and_changes_nothing_else():
    text = (repo_root() / "pyproject.toml").read_text()
    staged = wheel.staging_pyproject(text)
    assert staged.startswith(text.rstrip()) and 'course = ["data/**/*"]' in staged
    with pytest.raises(wheel.WheelError, match="already declares"):
        wheel.staging_pyproject(staged)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return wheel.build_wheel(tmp_path_factory.mktemp("dist"))


def test_wheel_holds_the_package_and_every_shipped_file(built):
    names = set(zipfile.ZipFile(built).namelist())
    shipped = [p.relative_to(repo_root()).as_posix() for p in (repo_root() / "data").rglob("*") if p.is_file()]
    assert shipped and all(f"course/{name}" in names for name in shipped), "a file of data/ is missing from the wheel"
    assert "course/__main__.py" in names and "course/checks/__init__.py" in names
    assert not any("__pycache__" in n for n in names)


def test_fresh_venv_installs_the_wheel_and_generates(built, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(built)], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch & co., after the venv's own
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_DATA_DIR")}
    env.update(OMP_NUM_THREADS="1", COURSE_LANG="en")
    where = subprocess.run([str(python), "-c", "import json, course, course.paths as p; "
                            "print(json.dumps([course.__file__, str(p.data_dir())]))"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=env)
    module, data = json.loads(where.stdout)
    assert module.startswith(str(venv)) and data.startswith(str(venv)), (module, data)
    out = tmp_path / "red.png"
    done = subprocess.run([str(python), "-m", "course", "generate", "a large red circle at the top left", "-o", str(out),
                           "--steps", "4"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.stat().st_size > 100
