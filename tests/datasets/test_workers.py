"""Worker tasks of several pieces: a failed task is rerun one piece per task, so only the bad
piece is lost and it keeps its own reason."""

import time

from mvae_jax.datasets import _workers


def _work(x):
  if x == 7:
    time.sleep(30)  # hangs past the limit
  if x == 11:
    raise MemoryError
  return ("ok", x)


def _failed(x, reason, detail):
  return (reason, x)


def test_chunks_rerun_one_piece_per_task_when_one_fails():
  out = list(_workers.map_limited(_work, range(20), _failed, workers=2, time_limit=1.0,
                                  memory_limit_mb=0, chunk=8))
  assert sorted(out) == sorted([("ok", x) for x in range(20) if x not in (7, 11)]
                               + [("time limit", 7), ("memory limit", 11)])
