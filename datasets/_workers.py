"""Worker processes with limits: no one item can stop, hang or exhaust a build.

`map_limited` runs `fn` over items in a pebble `ProcessPool` (a maintained process pool that kills
and replaces a worker whose task runs past its timeout or which dies). Each worker caps its own
address space (`resource.RLIMIT_AS`) in its initializer, so an allocation beyond the cap raises
MemoryError there (or kills that worker), never the build. A task that times out, dies or raises
is handed to `failed(item, reason, detail)`, whose return value is yielded in its place.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
from typing import Callable, Iterable, Iterator

import pebble

# Imported once by the fork server, so a replacement worker starts in milliseconds.
_PRELOAD = ["mvae_jax.datasets._base"]


def _cap_memory(memory_limit_mb: int) -> None:
  if memory_limit_mb:
    cap = memory_limit_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def outcome(future, item, failed: Callable, time_limit: float, memory_limit_mb: int):
  """A finished task's result, or `failed(item, reason, detail)` when it timed out, ran out of
  memory, lost its worker or raised."""
  try:
    return future.result()
  except concurrent.futures.TimeoutError:
    return failed(item, "time limit", f"ran past the time limit of {time_limit:g}s "
                  "(--time_limit)")
  except MemoryError:
    return failed(item, "memory limit", f"needed more than {memory_limit_mb} MiB "
                  "(--memory_limit_mb)")
  except pebble.ProcessExpired as e:
    return failed(item, "worker died", f"the worker process died (exit code {e.exitcode}; "
                  f"likely out of memory under --memory_limit_mb {memory_limit_mb})")
  except Exception as e:  # noqa: BLE001  (a bug on odd input must not end the build)
    first = str(e).splitlines()[0][:200] if str(e) else ""
    return failed(item, "error", f"{type(e).__name__}: {first}")


def map_limited(fn: Callable, items: Iterable, failed: Callable, *, workers: int,
                time_limit: float, memory_limit_mb: int) -> Iterator:
  """`fn(item)` for every item, in completion order, each under `time_limit` seconds and
  `memory_limit_mb` MiB of address space in one of `workers` processes."""
  ctx = multiprocessing.get_context("forkserver")
  ctx.set_forkserver_preload(_PRELOAD)
  items = iter(items)
  with pebble.ProcessPool(max_workers=max(1, workers), initializer=_cap_memory,
                          initargs=(memory_limit_mb,), context=ctx) as pool:
    pending = {}

    def submit(n: int) -> None:
      for _ in range(n):
        item = next(items, None)
        if item is None:
          return
        pending[pool.schedule(fn, args=(item,), timeout=time_limit or None)] = item

    submit(4 * max(1, workers))
    while pending:
      done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
      for future in done:
        yield outcome(future, pending.pop(future), failed, time_limit, memory_limit_mb)
      submit(len(done))
