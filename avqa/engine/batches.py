"""The loader every training and test here reads batches through: a dataset's ``batch`` filled in sampler
order by a prefetch thread into a small ring of reused buffers."""
from __future__ import annotations

import collections


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

