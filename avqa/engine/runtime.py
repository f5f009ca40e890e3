"""The process a run lives in: its device, its place among torchrun's processes, mixed precision,
and the loaders that feed it (each process its share of every batch)."""
from __future__ import annotations

import os
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

from ..utils import pick_device
from .batches import BatchLoader


class Runtime:
    """Device, distributed setup and mixed precision of one process.

    ``args``: a run's config (or parsed flags) with ``gpu``, ``device`` and ``amp``.
    """

    def __init__(self, args):
        if args.gpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        requested = pick_device(args.device)
        if requested == "cuda":  # an explicit index: set_device refuses a bare "cuda" in some torch versions
            requested = f"cuda:{local if self.world > 1 else torch.cuda.current_device()}"
        self.device = torch.device(requested)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.amp_dtype = None
        if args.amp:
            if self.device.type == "cuda":
                self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            else:
                self.amp_dtype = torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def per_process(self, global_batch: int) -> int:
        """Each process's share of --batch-size, which stays the global batch (as on one process)."""
        if global_batch % self.world:
            raise SystemExit(f"--batch-size {global_batch} does not split evenly over {self.world} processes; "
                             f"pass a multiple of {self.world}")
        return global_batch // self.world

    def share(self, value):
        """Rank 0's value, on every process."""
        if self.world > 1:
            box = [value]
            dist.broadcast_object_list(box, src=0)
            value = box[0]
        return value

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def make_loader(dataset, batch_size: int, shuffle: bool, rt: Runtime, prefetch: int, seed: int) -> BatchLoader:
    if shuffle and rt.world > 1:
        sampler = DistributedSampler(dataset, num_replicas=rt.world, rank=rt.rank, shuffle=True, seed=seed)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator())
    else:
        sampler = SequentialSampler(dataset)
    return BatchLoader(dataset, batch_size, sampler, prefetch, pin=rt.device.type == "cuda")


def set_loader_epoch(loader: BatchLoader, epoch: int, seed: int) -> None:
    loader.dataset.set_epoch(epoch)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    elif isinstance(loader.sampler, RandomSampler):
        loader.sampler.generator.manual_seed(seed * 100003 + epoch)
