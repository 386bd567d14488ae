"""The environment check: what is installed, which device and profile the course will use."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from dataclasses import dataclass

from course.profiles import current_profile, profile_reason

# import name → distribution name, for everything the notebooks import
REQUIRED: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "ipywidgets": "ipywidgets",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "tqdm": "tqdm",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _version(module: str, dist: str) -> Check:
    try:
        importlib.import_module(module)
    except Exception as err:  # a broken install (e.g. torchvision beside a mismatched torch) must not crash the report
        return Check(dist, False, f"cannot import {module}: {type(err).__name__}: {err}".splitlines()[0])
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "installed"
    return Check(dist, True, version)


def environment_checks() -> list[Check]:
    """One :class:`Check` per required package, then the device and the profile."""
    checks = [Check("python", sys.version_info >= (3, 10), platform.python_version())]
    checks += [_version(module, dist) for module, dist in REQUIRED.items()]
    try:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
        else:
            device = f"cpu ({torch.get_num_threads()} threads)"
        checks.append(Check("device", True, device))
    except Exception:
        checks.append(Check("device", False, "torch is missing"))
    try:
        profile = current_profile()
        checks.append(Check("profile", True, f"{profile.name} — {profile.description} [{profile_reason()}]"))
    except ValueError as err:
        checks.append(Check("profile", False, str(err)))
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'✅' if c.ok else '❌'} {c.name:<{width}}  {c.detail}" for c in checks)


def report() -> bool:
    """Print the environment check; True when everything the course needs is there."""
    checks = environment_checks()
    print(format_checks(checks))
    return all(c.ok for c in checks)
