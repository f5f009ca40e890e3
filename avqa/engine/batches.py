"""The loader every training and test here reads batches through: a dataset's ``batch`` filled in sampler
order by a prefetch thread into a small ring of reused buffers."""
from __future__ import annotations

import collections

import torch


class BatchLoader:
    """Batches of a dataset in sampler order, filled by ``dataset.batch`` in a prefetch thread.

    Reading (pread) into a small ring of reused buffers costs one copy per byte and no page
    faults; loader processes would add a second copy through shared memory, which on a small
    machine is slower than the model step itself. A yielded batch stays valid until the next
    one is taken (its feature tensors are then reused).
    """

    def __init__(self, dataset, batch_size: int, sampler, prefetch: int = 2, pin: bool = False):
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.prefetch, self.pin = max(0, prefetch), pin
        self._ring: list[dict] = []

    def __len__(self) -> int:
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size

    def _chunks(self):
        order = list(iter(self.sampler))
        for k in range(0, len(order), self.batch_size):
            yield order[k:k + self.batch_size]

    def _buffers(self, n: int) -> dict:
        while len(self._ring) <= n:
            self._ring.append(self.dataset.buffers(self.batch_size, self.pin))
        return self._ring[n]

    def __iter__(self):
        ring = self.prefetch + 2  # batch in use + prefetched ones + the one being filled
        if self.prefetch == 0:
            for n, chunk in enumerate(self._chunks()):
                yield self.dataset.batch(chunk, self._buffers(n % 2))
            return
        import concurrent.futures as cf
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            pending: collections.deque = collections.deque()
            for n, chunk in enumerate(self._chunks()):
                pending.append(pool.submit(self.dataset.batch, chunk, self._buffers(n % ring)))
                if len(pending) > self.prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()



class PerVideoBatches:
    """A dataset whose features are per-video stores (avqa.store.FeatureStore), read at fixed positions into
    preallocated buffers: ``reads`` maps each batch key to its store and the positions (seconds or token
    frames) read of every video. A family's dataset adds its per-question tensors in ``extras``."""

    def __init__(self, split, reads: dict):
        self.split, self.reads = split, reads

    def __len__(self) -> int:
        return len(self.split.samples)

    def set_epoch(self, epoch: int) -> None:
        pass  # nothing is drawn at random

    def buffers(self, batch_size: int, pin: bool = False) -> dict:
        return {name: torch.empty((batch_size, len(positions), *store.per_second_shape), pin_memory=pin)
                for name, (store, positions) in self.reads.items()}

    def extras(self, idx) -> dict:
        """The batch's per-question tensors (``idx``: the rows), besides label, type and index."""
        return {}

    def batch(self, indices, buffers: dict | None = None) -> dict:
        """The batch of ``indices``; feature arrays are written into ``buffers`` when given."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        bufs = buffers if buffers is not None else self.buffers(len(idx))
        out = {k: v[:len(idx)] for k, v in bufs.items()}
        for b, i in enumerate(idx.tolist()):
            video = self.split.samples[i]["video_id"]
            for name, (store, positions) in self.reads.items():
                store.read_into(out[name][b], video, positions)
        out.update(self.extras(idx))
        out.update({"label": self.split.answers[idx], "type": self.split.types[idx], "index": idx})
        return out
