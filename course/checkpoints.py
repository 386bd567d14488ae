"""Checkpoints as safetensors files with a JSON manifest beside them (never pickles).

``name.safetensors`` holds tensors only; ``name.json`` records what produced them: the sha256 of
the safetensors file, the command, the hardware, the wall time, the profile, the model config and
any metrics. Loading verifies the checksum and the config, and says clearly what does not match.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, or does not fit the model asked for."""


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hardware() -> str:
    """A one-line description of the machine: CPU model and cores, and the GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu} ({threads} threads){gpu}"


def command_line() -> str:
    return " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "python"


def manifest_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save(path: str | Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``tensors`` to ``path`` (safetensors) and the manifest, with the file's sha256, beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)  # atomic: an interrupted save never leaves half a checkpoint
    manifest = {**manifest, "file": path.name, "sha256": sha256(path)}
    manifest_path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    mpath = manifest_path(path)
    if not mpath.exists():
        raise CheckpointError(f"{mpath} is missing: every checkpoint ships with its manifest")
    return json.loads(mpath.read_text())


def load(path: str | Path, config: dict[str, Any] | None = None, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read tensors and manifest; check the sha256 and (if given) that the manifest's config equals ``config``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found")
    manifest = read_manifest(path)
    if verify:
        actual = sha256(path)
        if actual != manifest.get("sha256"):
            raise CheckpointError(
                f"{path.name}: sha256 mismatch (file {actual[:12]}…, manifest {str(manifest.get('sha256'))[:12]}…): "
                "the file is corrupted or was replaced; retrain it with the command in its manifest"
            )
    if config is not None:
        saved = manifest.get("config")
        if saved != config:
            diff = sorted(k for k in set(saved or {}) | set(config) if (saved or {}).get(k) != config.get(k))
            details = ", ".join(f"{k}: checkpoint {(saved or {}).get(k)!r} vs model {config.get(k)!r}" for k in diff)
            raise CheckpointError(f"{path.name} was trained with another config ({details})")
    return load_file(str(path)), manifest
