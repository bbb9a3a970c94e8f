"""Training throughput of a config on the devices at hand: steps/s, examples/s, compile time,
peak memory, and FLOP/s counted correctly (`train.flops`: scan bodies × trip count) beside the
same run's measured matmul rate. The step is the training loop's own (`loop.Run`: sharded over
every device, state donated); batches are random labels of the right shape (throughput does not
depend on the data)."""

from __future__ import annotations

import resource
import time
from typing import Any, NamedTuple

import jax
import numpy as np

from mvae_jax.train import flops as flops_lib
from mvae_jax.train import steps as steps_lib


def _peak_memory() -> tuple[float, str]:
  """(bytes, what): the device's peak allocation where it reports one, else the process's peak
  resident set (CPU: includes the host runtime, and is the peak of the whole process so far)."""
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    return float(stats["peak_bytes_in_use"]), "device peak_bytes_in_use (device 0)"
  return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024), "process peak RSS"


def random_batch(conv, batch: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  labels = np.stack([rng.integers(0, d, (batch, conv.window_steps)) for d in conv.output_depths],
                    -1).astype(np.int32)
  return {"labels": labels, "lengths": np.full((batch,), conv.window_steps, np.int32),
          "mask": np.ones((batch,), np.float32)}


class CompiledStep(NamedTuple):
  """The training loop's own step compiled for one random batch, and what to call it with."""

  step: Any  # jax.stages.Compiled: (state, batch, rng) -> (state, metrics)
  state: Any
  batch: dict
  rng: jax.Array
  compile_s: float


def compiled_step(cfg) -> CompiledStep:
  """`loop.Run(cfg)`'s sharded train step (state donated), lowered and compiled on a random
  batch of the config's global batch size; `compile_s` times lowering + compiling."""
  from mvae_jax.train import loop, sharding  # noqa: PLC0415
  run = loop.Run(cfg)
  state = run.init_state()
  batch = sharding.global_batch(random_batch(run.conv, run.local_batch), run.mesh)
  t0 = time.perf_counter()
  step = run.train_step.lower(state, batch, run.rng).compile()
  return CompiledStep(step, state, batch, run.rng, time.perf_counter() - t0)


def measure(cfg, steps: int = 10, matmul_rate: float | None = None) -> dict:
  """Times `steps` training steps of `cfg` at its global batch (after one compiling step);
  `matmul_rate`: the machine's GEMM rate in cfg's compute dtype, if already measured."""
  b = cfg.train.batch_size
  compiled, state, batch, rng, compile_s = compiled_step(cfg)
  state, m = compiled(state, batch, rng)
  jax.block_until_ready(m)
  t0 = time.perf_counter()
  for _ in range(steps):
    state, m = compiled(state, batch, rng)
  jax.block_until_ready(m)
  sps = steps / (time.perf_counter() - t0)
  f = flops_lib.train_step_flops(cfg, b)
  # the rate of a square matmul in the dtype the layers multiply in (train.compute_dtype)
  dtype = steps_lib.dtype_setting(cfg.train, "compute_dtype")
  rate = matmul_rate or flops_lib.matmul_rate(dtype=dtype)
  mem, mem_what = _peak_memory()
  return {"device": flops_lib.device_name(), "devices": jax.device_count(), "batch_size": b,
          "steps_per_sec": sps, "examples_per_sec": sps * b, "compile_s": compile_s,
          "flops_per_step": f, "xla_cost_analysis_flops": flops_lib.xla_flops(compiled),
          "achieved_flops_per_sec": f * sps, "matmul_rate_flops_per_sec": rate,
          "matmul_rate_dtype": dtype,
          "fraction_of_matmul_rate": f * sps / rate, "peak_memory_bytes": mem,
          "peak_memory_kind": mem_what, "timed_steps": steps}


__all__ = ["CompiledStep", "compiled_step", "measure", "random_batch"]
