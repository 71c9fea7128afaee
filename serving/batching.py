"""Runs signatures, with optional dynamic request batching.

Without batching every request is one SavedModel call on the worker pool.

With batching (TF Serving's BatchingParameters), requests wait in a queue per
(servable version, signature, scalar inputs). A batch closes when it holds
`max_batch_size` queries or `batch_timeout_micros` after its first request
arrived, and runs when one of `num_batch_threads` workers is free (requests
keep joining while it waits). Its batched inputs ([B] or [B, ...]) are
concatenated along B and every output is sliced back along B.

Requests with different scalar inputs (LiNR: different `k` or `strategy`)
never share a batch: they sit in different queues. Each request is validated
alone before it is queued (names, dtypes, shapes); if a batched call still
fails (e.g. one bad filter string), every request of that batch is re-run alone
so only the faulty one gets the error.
"""

import asyncio
import collections
import concurrent.futures
import logging
import time
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from serving import errors
from serving.config import BatchingOptions
from serving.errors import ServingError

log = logging.getLogger("serving")


def call_signature(signature, arrays: Dict[str, np.ndarray]
                   ) -> Dict[str, np.ndarray]:
  """One SavedModel call (in a worker thread)."""
  try:
    tensors = {n: tf.constant(arrays[n], dtype=spec.dtype)
               for n, spec in signature.inputs.items()}
    out = signature.fn(**tensors)
    return {n: v.numpy() for n, v in out.items()}
  except tf.errors.OpError as e:
    raise errors.from_op_error(e) from None
  except (TypeError, ValueError) as e:
    raise errors.invalid(str(e)[:2000]) from None


class _Task:
  __slots__ = ("arrays", "rows", "future", "t0")

  def __init__(self, arrays, rows, future, t0):
    self.arrays = arrays
    self.rows = rows
    self.future = future
    self.t0 = t0


class _Queue:

  def __init__(self, servable, signature):
    self.servable = servable
    self.signature = signature
    self.tasks = collections.deque()
    self.rows = 0
    self.full = asyncio.Event()
    self.running = False


class Executor:
  """Executes predict calls, batching them when `options` is given."""

  def __init__(self, options: Optional[BatchingOptions] = None,
               num_threads: int = 2):
    self.options = options
    threads = options.num_batch_threads if options else num_threads
    self._pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=threads, thread_name_prefix="predict")
    self._slots = None
    self._threads = threads
    self._queues: Dict[tuple, _Queue] = {}
    self.batches_run = 0
    self.batched_rows = 0

  def shutdown(self):
    self._pool.shutdown(wait=False, cancel_futures=True)

  async def run(self, servable, signature, arrays: Dict[str, np.ndarray],
                rows: int) -> Dict[str, np.ndarray]:
    loop = asyncio.get_running_loop()
    if self._slots is None:
      self._slots = asyncio.Semaphore(self._threads)
    opts = self.options
    if opts is None:
      async with self._slots:
        return await loop.run_in_executor(self._pool, call_signature,
                                          signature, arrays)
    if rows > opts.max_batch_size:
      if not opts.enable_large_batch_splitting:
        raise errors.invalid(
            f"Task size {rows} is larger than maximum input batch size "
            f"{opts.max_batch_size}")
      async with self._slots:
        return await loop.run_in_executor(self._pool, call_signature,
                                          signature, arrays)
    batched = set(signature.batched_inputs())
    scalars = tuple((n, arrays[n].dtype.str, arrays[n].tobytes()
                     if arrays[n].dtype != object else
                     repr(arrays[n].tolist()).encode())
                    for n in sorted(arrays) if n not in batched)
    key = (id(servable), signature.name, scalars)
    queue = self._queues.get(key)
    if queue is None:
      queue = self._queues[key] = _Queue(servable, signature)
    if queue.rows + rows > opts.max_batch_size * opts.max_enqueued_batches:
      raise ServingError("UNAVAILABLE", "The batch scheduling queue to which "
                         "this task was submitted is full")
    future = loop.create_future()
    queue.tasks.append(_Task(arrays, rows, future, loop.time()))
    queue.rows += rows
    if queue.rows >= opts.max_batch_size:
      queue.full.set()
    if not queue.running:
      queue.running = True
      loop.create_task(self._dispatch(key, queue))
    return await future

  async def _dispatch(self, key, queue: _Queue):
    loop = asyncio.get_running_loop()
    opts = self.options
    try:
      while queue.tasks:
        wait = queue.tasks[0].t0 + opts.timeout_s - loop.time()
        if queue.rows < opts.max_batch_size and wait > 0:
          queue.full.clear()
          try:
            await asyncio.wait_for(queue.full.wait(), wait)
          except asyncio.TimeoutError:
            pass
        await self._slots.acquire()
        batch, rows = [], 0
        while queue.tasks and rows + queue.tasks[0].rows <= opts.max_batch_size:
          task = queue.tasks.popleft()
          rows += task.rows
          batch.append(task)
        queue.rows -= rows
        batch = [t for t in batch if not t.future.done()]  # cancelled
        if not batch:
          self._slots.release()
          continue
        loop.create_task(self._run_batch(queue.signature, batch))
    finally:
      queue.running = False
      if not queue.tasks and self._queues.get(key) is queue:
        del self._queues[key]

  async def _run_batch(self, signature, batch: List[_Task]):
    loop = asyncio.get_running_loop()
    try:
      results = await loop.run_in_executor(self._pool, self._execute,
                                           signature, batch)
      for task, result in zip(batch, results):
        if task.future.done():
          continue
        if isinstance(result, Exception):
          task.future.set_exception(result)
        else:
          task.future.set_result(result)
    except Exception as e:  # pylint: disable=broad-except
      log.exception("batch failed")
      for task in batch:
        if not task.future.done():
          task.future.set_exception(ServingError("INTERNAL", str(e)[:2000]))
    finally:
      self._slots.release()

  def _execute(self, signature, batch: List[_Task]):
    """Runs one batch (worker thread); per-task results or exceptions."""
    self.batches_run += 1
    self.batched_rows += sum(t.rows for t in batch)
    if len(batch) == 1:
      try:
        return [call_signature(signature, batch[0].arrays)]
      except ServingError as e:
        return [e]
    batched = set(signature.batched_inputs())
    merged = {}
    for name in signature.inputs:
      if name in batched:
        merged[name] = np.concatenate([t.arrays[name] for t in batch], axis=0)
      else:
        merged[name] = batch[0].arrays[name]
    total = sum(t.rows for t in batch)
    try:
      out = call_signature(signature, merged)
      if all(v.ndim and v.shape[0] == total for v in out.values()):
        results, start = [], 0
        for t in batch:
          results.append({n: v[start:start + t.rows] for n, v in out.items()})
          start += t.rows
        return results
    except ServingError:
      pass
    # The batch failed (or its outputs are not batch-major): run each alone.
    results = []
    for t in batch:
      try:
        results.append(call_signature(signature, t.arrays))
      except ServingError as e:
        results.append(e)
    return results


def now_ms() -> float:
  return time.perf_counter() * 1e3
