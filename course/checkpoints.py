"""Checkpoints as safetensors files with a JSON manifest beside them (never pickles).

``name.safetensors`` holds tensors only; ``name.json`` records what produced them: the sha256 of
the safetensors file, the command, the hardware, the wall time, the profile, the model config and
any metrics. Loading verifies the checksum and the config, and says clearly what does not match.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
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


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        _fsync(folder)
    except OSError:  # some systems cannot open a folder for syncing; the renames are atomic all the same
        pass


def _commit(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Put ``path``'s temporary weights in place with their manifest, so that at every instant the pair on disk is valid.

    The journal, in order: weights → ``name.safetensors.tmp``, manifest (with the sha256 of those weights)
    → ``name.json.tmp``, both synced; then rename the weights, then the manifest. A kill before the first
    rename leaves the old pair; a kill between the renames leaves new weights beside the old manifest, and
    ``name.json.tmp`` describing them, which :func:`read_manifest` reads instead (rolls forward, without writing).
    """
    weights_tmp, manifest_tmp = _tmp(path), _tmp(manifest_path(path))
    manifest = {**manifest, "file": path.name, "sha256": sha256(weights_tmp)}
    with open(manifest_tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync(weights_tmp)
    os.replace(weights_tmp, path)
    os.replace(manifest_tmp, manifest_path(path))
    _fsync_dir(path.parent)
    return manifest


def save(path: str | Path, tensors: dict[str, torch.Tensor], manifest: dict[str, Any], header: dict[str, str] | None = None) -> dict[str, Any]:
    """Write ``tensors`` to ``path`` (safetensors, with ``header`` as its metadata) and the manifest, with the file's sha256, beside it.

    Atomic as a pair: killed at any instant, the folder holds either the previous checkpoint or this
    one, never weights whose manifest describes other weights (see :func:`_commit`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(_tmp(path)), metadata=header)
    return _commit(path, manifest)


def copy(source: str | Path, destination: str | Path, **extra: Any) -> dict[str, Any]:
    """Copy a verified checkpoint and its manifest (plus ``extra`` fields) to ``destination``, atomically as a pair."""
    source, destination = Path(source), Path(destination)
    manifest = read_manifest(source)
    if sha256(source) != manifest.get("sha256"):
        raise CheckpointError(f"{source}: sha256 mismatch with its manifest: the file is corrupted or was replaced; retrain it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, _tmp(destination))
    return _commit(destination, {**manifest, **extra})


def _parse(mpath: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{mpath} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}): restore it (git checkout {mpath}) or retrain the checkpoint"
        ) from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{mpath} is not a checkpoint manifest (a JSON object): restore it or retrain the checkpoint")
    return manifest


def _roll_forward(path: Path) -> dict[str, Any] | None:
    """The manifest a save interrupted between its two renames left in ``name.json.tmp``, if it describes ``path``."""
    pending = _tmp(manifest_path(path))
    if not pending.exists() or not path.exists():
        return None
    try:
        manifest = _parse(pending)
    except (CheckpointError, OSError):
        return None  # killed while writing it: the pair in place is the previous, complete one
    if manifest.get("sha256") != sha256(path):
        return None
    # Read only, never renamed here: a reader may run beside a live writer (its rename would break the writer's);
    # the writer's next save replaces the pending file anyway.
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of checkpoint ``path`` (or that of a save interrupted between its renames, which describes it)."""
    path = Path(path)
    mpath = manifest_path(path)
    if _tmp(mpath).exists():
        recovered = _roll_forward(path)
        if recovered is not None:
            return recovered
    if not mpath.exists():
        raise CheckpointError(f"{mpath} is missing: every checkpoint ships with its manifest")
    return _parse(mpath)


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
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError (or OSError) with a terse message
        raise CheckpointError(f"{path} is truncated or not a safetensors file ({err}): restore it or retrain it with the command in its manifest") from None
    return tensors, manifest
