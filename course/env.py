"""The environment check: what is installed, which device and profile the course will use."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from dataclasses import dataclass

from course.language import tr
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
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        return Check(dist, False, tr(en=f"cannot import {module}: {reason}", fr=f"impossible d'importer {module} : {reason}"))
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = tr(en="installed", fr="installé")
    return Check(dist, True, version)


def threads_label(n: int) -> str:
    """How many CPU threads torch computes with: "4 threads" in English, « 4 fils d'exécution » in French."""
    return tr(en=f"{n} threads", fr=f"{n} fil{'s' if n > 1 else ''} d'exécution")


def environment_checks() -> list[Check]:
    """One :class:`Check` per required package, then the device and the profile."""
    checks = [Check("python", sys.version_info >= (3, 10), platform.python_version())]
    checks += [_version(module, dist) for module, dist in REQUIRED.items()]
    device_name = tr(en="device", fr="matériel")
    try:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.get_device_name(0)})"
        else:
            device = f"cpu ({threads_label(torch.get_num_threads())})"
        checks.append(Check(device_name, True, device))
    except Exception:
        checks.append(Check(device_name, False, tr(en="torch is missing", fr="torch n'est pas installé")))
    profile_name = tr(en="profile", fr="profil")
    try:
        profile = current_profile()
        checks.append(Check(profile_name, True, f"{profile.name} — {profile.describe()} [{profile_reason()}]"))
    except ValueError as err:
        checks.append(Check(profile_name, False, str(err)))
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'✅' if c.ok else '❌'} {c.name:<{width}}  {c.detail}" for c in checks)


def report() -> bool:
    """Print the environment check; True when everything the course needs is there."""
    checks = environment_checks()
    print(format_checks(checks))
    return all(c.ok for c in checks)
