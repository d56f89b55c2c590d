"""Dynamic batching: concurrent requests for one side are encoded together, in one forward pass per batch.

A worker per side takes the first queued request, then keeps collecting requests until the batch holds
``max_batch`` texts or ``max_wait_s`` has passed since the first, runs one encode in the single encoding thread
(both sides share it: the engine already uses every core, so two encodes at once would only contend) and
resolves each request's future with its rows. A request larger than ``max_batch`` is encoded alone; a request
that would overflow a batch starts the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from embedkit.choices import Side

# texts, side -> (vectors [n, dim], tokens per text)
EncodeFn = Callable[[Sequence[str], str], tuple[np.ndarray, list[int]]]


@dataclass
class BatchStats:
    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0  # texts

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Pending:
    texts: Sequence[str]
    future: asyncio.Future


class Batcher:
    def __init__(self, encode: EncodeFn, max_batch: int, max_wait_s: float):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be at least 1 and max_wait_s at least 0")
        self._encode, self.max_batch, self.max_wait_s = encode, max_batch, max_wait_s
        self.stats = BatchStats()
        self._queues: dict[str, asyncio.Queue[_Pending]] = {}
        self._workers: list[asyncio.Task] = []
        self._executor: Optional[ThreadPoolExecutor] = None

    def start(self) -> None:
        """Start the workers (inside the running event loop)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedkit-encode")
        self._queues = {side.value: asyncio.Queue() for side in Side}
        self._workers = [asyncio.create_task(self._work(side)) for side in self._queues]

    async def stop(self) -> None:
        """Stop the workers once every queued request has been answered (the server has stopped taking new ones)."""
        for queue in self._queues.values():
            await queue.join()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return sum(queue.qsize() for queue in self._queues.values())

    async def submit(self, texts: Sequence[str], side: str) -> tuple[np.ndarray, list[int]]:
        """The vectors and token counts of ``texts``, encoded in a batch with whatever else is queued for ``side``."""
        future = asyncio.get_running_loop().create_future()
        self.stats.requests += 1
        self.stats.texts += len(texts)
        await self._queues[side].put(_Pending(texts, future))
        return await future

    async def _work(self, side: str) -> None:
        queue, loop = self._queues[side], asyncio.get_running_loop()
        carried: Optional[_Pending] = None
        while True:
            batch = [carried or await queue.get()]
            carried = None
            size, deadline = len(batch[0].texts), loop.time() + self.max_wait_s
            while size < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
                if size + len(item.texts) > self.max_batch:
                    carried = item
                    break
                batch.append(item)
                size += len(item.texts)
            await self._run(batch, side, loop)
            for _ in batch:
                queue.task_done()

    async def _run(self, batch: list[_Pending], side: str, loop: asyncio.AbstractEventLoop) -> None:
        live = [item for item in batch if not item.future.done()]  # a client that went away is not encoded for
        if not live:
            return
        texts = [text for item in live for text in item.texts]
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        try:
            vectors, tokens = await loop.run_in_executor(self._executor, self._encode, texts, side)
        except Exception as exc:  # noqa: BLE001  (each waiting request gets the failure, the worker goes on)
            for item in live:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        start = 0
        for item in live:
            end = start + len(item.texts)
            if not item.future.done():
                item.future.set_result((vectors[start:end], tokens[start:end]))
            start = end
