"""Apache Beam transforms of a build (`mvae prepare ... --beam`), through TFDS's Beam support.

Two pipelines, as the local build's two passes: `stage` runs every piece through a limited
worker process (as the local build does) and writes kept results per split and rejected rows
to a staging folder; then TFDS's Beam writer reads the staged splits that received pieces
(`ReadStaged`), so an empty split is a warning here too. Runs on the DirectRunner locally, on
Dataflow, Flink or Spark through pipeline options (the staging folder must then be storage the
workers share). Imported only when --beam is given (the `beam` extra).
"""

from __future__ import annotations

import base64
import csv
import io

import apache_beam as beam
import pebble

from mvae_jax.datasets import _workers


def pipeline_options(text: str):
  """'runner=DirectRunner,direct_num_workers=2' -> PipelineOptions (TFDS's CLI convention)."""
  flags = [f"--{kv.strip()}" for kv in (text or "").split(",") if kv.strip()]
  return beam.options.pipeline_options.PipelineOptions(flags=flags)


def tsv_line(row: tuple) -> str:
  out = io.StringIO()
  csv.writer(out, delimiter="\t", lineterminator="").writerow(row)
  return out.getvalue()


class _LimitedPieces(beam.DoFn):
  """Each piece through `fn` in a worker process of its own with the build's limits."""

  def __init__(self, fn, failed, time_limit: float, memory_limit_mb: int):
    super().__init__()
    self._fn, self._failed = fn, failed
    self._time_limit, self._memory_limit_mb = time_limit, memory_limit_mb
    self._pool = None

  def setup(self):
    self._pool = pebble.ProcessPool(max_workers=1, initializer=_workers._cap_memory,
                                    initargs=(self._memory_limit_mb,))

  def process(self, piece):
    future = self._pool.schedule(self._fn, args=(piece,), timeout=self._time_limit or None)
    yield _workers.outcome(future, piece, self._failed, self._time_limit,
                           self._memory_limit_mb)

  def teardown(self):
    if self._pool is not None:
      self._pool.stop()
      self._pool.join()


def stage(pieces, fn, failed, limits, options, staging: str, splits: tuple[str, ...],
          split_of) -> None:
  """First Beam pipeline: every piece through `fn` under the limits; kept results pickled per
  split into `staging`/kept-SPLIT-* (one base64 line each), rejected rows into
  `staging`/rejected-*. Splits are known only now (every piece of one may be rejected)."""
  import os  # noqa: PLC0415
  import pickle  # noqa: PLC0415
  with beam.Pipeline(options=options) as p:
    results = (p
               | "Pieces" >> beam.Create(pieces)
               | "Reshuffle" >> beam.Reshuffle()
               | "Process" >> beam.ParDo(_LimitedPieces(fn, failed, limits.time_limit,
                                                        limits.memory_limit_mb)))
    _ = (results
         | "Rejected" >> beam.Filter(lambda r: "rejected" in r)
         | "Row" >> beam.Map(lambda r: tsv_line((r["source"], r["rejected"], r["detail"])))
         | "WriteRejected" >> beam.io.WriteToText(os.path.join(staging, "rejected")))
    kept = results | "Kept" >> beam.Filter(lambda r: "rejected" not in r)
    by_split = kept | "BySplit" >> beam.Partition(lambda r, n: splits.index(r["split"]),
                                                  len(splits))
    for split, pcoll in zip(splits, by_split):
      _ = (pcoll
           | f"Pickle_{split}" >> beam.Map(lambda r: base64.b64encode(pickle.dumps(r)).decode())
           | f"Write_{split}" >> beam.io.WriteToText(os.path.join(staging, f"kept-{split}")))


class ReadStaged(beam.PTransform):
  """Second pipeline (TFDS's): the staged kept results of one split -> (id, example)."""

  def __init__(self, pattern: str, to_example):
    super().__init__()
    self._pattern, self._to_example = pattern, to_example

  def expand(self, pbegin):
    import pickle  # noqa: PLC0415
    return (pbegin
            | "ReadStaged" >> beam.io.ReadFromText(self._pattern)
            | "Unpickle" >> beam.Map(lambda line: pickle.loads(base64.b64decode(line)))
            | "Example" >> beam.Map(self._to_example))


__all__ = ["stage", "ReadStaged", "pipeline_options", "tsv_line"]
