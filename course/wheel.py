"""A wheel that carries the course and its shipped ``data/``: the install path that needs no repository.

``python -m course.wheel`` builds ``dist/course-<version>-py3-none-any.whl``: the ``course`` package with
the checkout's ``data/`` folder copied inside it as ``course/data`` (found there by
:func:`course.paths.data_dir`). A Colab user uploads it to ``/content`` (the notebooks' setup cell installs
it) or installs it from a release URL with ``pip install URL``; the dependencies are the project's own
ranges, so Colab keeps its CUDA torch.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course.paths import repo_root

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


class WheelError(Exception):
    """A wheel that cannot be built (a one-line message)."""


def staging_pyproject(text: str) -> str:
    """The checkout's pyproject.toml with ``course/data`` declared as package data (nothing else changed)."""
    if "[tool.setuptools.package-data]" in text:
        raise WheelError("pyproject.toml already declares package data: update course.wheel.staging_pyproject")
    return text.rstrip() + '\n\n[tool.setuptools.package-data]\ncourse = ["data/**/*"]\n'


def stage(root: Path, into: Path) -> Path:
    """Copy what the wheel holds (pyproject, README, ``course/``, ``data/`` as ``course/data``) into ``into``."""
    into.mkdir(parents=True)
    for needed in ("pyproject.toml", "README.md", "course", "data"):
        if not (root / needed).exists():
            raise WheelError(f"{root / needed} is missing: build the wheel from a checkout of the course")
    (into / "pyproject.toml").write_text(staging_pyproject((root / "pyproject.toml").read_text()))
    shutil.copy2(root / "README.md", into / "README.md")
    shutil.copytree(root / "course", into / "course", ignore=IGNORED)
    shutil.copytree(root / "data", into / "course" / "data", ignore=IGNORED)
    return into


def build_wheel(out_dir: str | Path = "dist", root: Path | None = None) -> Path:
    """Build the wheel into ``out_dir`` (offline: setuptools of this environment, no build isolation) and return its path."""
    root = root or repo_root()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-wheel-") as tmp:
        staged = stage(root, Path(tmp) / "course-src")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(staged)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip wheel failed"])[-1]
            raise WheelError(f"pip wheel failed: {last}")
    version = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    wheel = out / f"course-{version}-py3-none-any.whl"
    if not wheel.exists():
        raise WheelError(f"pip wheel ran but {wheel} is not there")
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.wheel", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out-dir", default="dist", help="folder for the wheel (default: dist/)")
    args = parser.parse_args(argv)
    try:
        wheel = build_wheel(args.out_dir)
    except WheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{wheel} ({wheel.stat().st_size / 1e6:.1f} MB): pip install {wheel.name}, or upload it to Colab's /content")
    return 0


if __name__ == "__main__":
    sys.exit(main())
