"""Data-parallel training on several processes, GPUs or machines: ``torchrun`` and PyTorch's DistributedDataParallel.

The idea: N processes hold the same model. At every step each takes its 1/N of the global batch
``get_batch(step)`` (:func:`shard`: every process computes the whole batch, a function of the step, and keeps
its contiguous piece), computes the loss on it and backpropagates; DDP all-reduces the gradients, so that every
process holds their mean. For a loss that is a mean over the examples, the mean of N equal shards' gradients is
the gradient of the whole batch: every process applies the update one process would apply on the global batch,
and the N copies of the weights stay identical. :func:`course.train.train` does this when launched by torchrun
(``torchrun --standalone --nproc_per_node 8 -m course.ldm train``; backend nccl on CUDA, gloo on the CPU).

What is equal to one process on the global batch:

- exactly, up to the order of floating-point sums: a loss that is a mean of per-example terms whose randomness is
  all in the batch (then an interrupted N-process run also resumes exactly: the resume state is the same file);
- statistically only: a loss that draws random numbers itself. The diffusion losses
  (:func:`course.ddpm.training_loss`) draw t and ε from the global generator, the autoencoder draws its latent z:
  each process seeds its generator with ``seed + rank``, so the shards get independent draws (not the ones one
  process would draw), and the resume state holds every process's generator, so an interrupted N-process run
  still ends exactly where an uninterrupted N-process run would;
- not the same objective: a loss that couples the examples of a batch (CLIP's contrastive loss would see only its
  shard's negatives: ``course.clip_train`` refuses to run on several processes), BatchNorm (each shard's statistics:
  the scene reader, the evaluator), and a mean over a count that varies between shards (cross-entropy with
  ``ignore_index`` weighs each shard's labels alike).

Only rank 0 holds the run folder's lock, writes checkpoints and sample grids, shows the progress bar and exports or
ships; the others wait for its saves, and raise the same error when one of its steps fails (:func:`run_on_main`).
"""

from __future__ import annotations

import atexit
import datetime
import os
import pickle
from typing import Any, Callable

import torch
import torch.distributed as dist

# rank 0 evaluates between training segments (course.ldm, every eval_every steps) while the others wait for it
TIMEOUT = datetime.timedelta(hours=1)


def _joined() -> bool:
    return dist.is_available() and dist.is_initialized()


def launched() -> bool:
    """Whether torchrun started this process (or a process group is already initialised)."""
    return _joined() or "WORLD_SIZE" in os.environ


def world_size() -> int:
    """How many processes train together (torchrun's WORLD_SIZE; 1 without torchrun)."""
    return dist.get_world_size() if _joined() else int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank among them (torchrun's RANK; 0 without torchrun)."""
    return dist.get_rank() if _joined() else int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Whether this process is rank 0, the one that writes files and prints."""
    return rank() == 0


def device() -> torch.device:
    """This process's device: cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init() -> torch.device:
    """Join the process group torchrun describes (once: nccl on CUDA, gloo on the CPU); return this process's device."""
    here = device()
    if here.type == "cuda":
        torch.cuda.set_device(here)  # "cuda" now means this process's GPU, and nccl's collectives run there
    if world_size() > 1 and not _joined():
        dist.init_process_group("nccl" if here.type == "cuda" else "gloo", timeout=TIMEOUT)
        atexit.register(_leave)
    return here


def _leave() -> None:
    if _joined():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process reaches this point (nothing to wait for in one process)."""
    if world_size() > 1:
        here = init()
        dist.barrier(device_ids=[here.index] if here.type == "cuda" else None)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over the processes (a sum divided by N: gloo has no average)."""
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, in every process."""
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shared(err: BaseException) -> BaseException:
    """Mark an error that every process raises alike: only rank 0 reports it (:func:`course.train.user_errors`)."""
    err.on_every_rank = True
    return err


def run_on_main(fn: Callable[[], Any]) -> Any:
    """``fn()`` on rank 0 only; every process returns its result, or raises its error (they wait for it: a barrier)."""
    if world_size() == 1:
        return fn()
    init()
    outcome: list[Any] = [None]
    if is_main():
        try:
            outcome = [(True, fn())]
        except Exception as err:
            error = err
            try:
                pickle.loads(pickle.dumps(err))
                outcome = [(False, err)]
            except Exception:  # an error that does not travel: its message does
                outcome = [(False, RuntimeError(f"{type(err).__name__}: {err}"))]
    dist.broadcast_object_list(outcome, src=0)
    ok, value = outcome[0]
    if ok:
        return value
    if is_main():
        raise shared(error)
    raise shared(value)


def _per_example(x: Any) -> bool:  # a list of strings (prompts…): one item per example
    return isinstance(x, (list, tuple)) and len(x) > 0 and not any(isinstance(v, (torch.Tensor, list, tuple, dict)) for v in x)


def _size(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    if _per_example(batch):
        return len(batch)
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        return next((n for n in map(_size, batch) if n is not None), None)
    return None


def _take(x: Any, part: slice, n: int) -> Any:
    if isinstance(x, torch.Tensor):
        if x.dim() == 0 or x.shape[0] != n:
            raise ValueError(f"every tensor of a batch must have the batch size {n} as its first dimension to be split, got shape {tuple(x.shape)}")
        return x[part]
    if _per_example(x):
        if len(x) != n:
            raise ValueError(f"every list of a batch must hold one item per example ({n}) to be split, got {len(x)}")
        return x[part]
    if isinstance(x, dict):
        return {k: _take(v, part, n) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_take(v, part, n) for v in x)
    return x


def shard(batch: Any, rank: int, world: int) -> Any:
    """Process ``rank``'s 1/``world`` of a batch: every tensor (and list of strings) of a tensor, tuple, list or dict
    cut along dim 0 into ``world`` equal contiguous pieces; the rest is left as it is."""
    n = _size(batch)
    if n is None:
        raise ValueError("a batch to split holds no tensor with a batch dimension")
    if n % world:
        raise ValueError(f"the global batch of {n} examples cannot be split evenly over {world} processes: "
                         f"choose a batch size divisible by {world} (--batch-size), or another number of processes")
    k = n // world
    return _take(batch, slice(rank * k, (rank + 1) * k), n)
