"""The `mvae bench` subcommand, registered by `cli.build_parser` with one call (`add_parsers`)."""

from __future__ import annotations

import argparse


def add_parsers(sub, user_error) -> None:
  """Adds `bench` to the `mvae` subparsers `sub`; user_error: the exception class the CLI prints
  as one line (exit status 2)."""

  def bench_cmd(args, overrides) -> int:
    from absl import logging as absl_logging  # noqa: PLC0415
    absl_logging.set_verbosity(absl_logging.ERROR)
    from mvae_jax.bench import runner, suite  # noqa: PLC0415
    from mvae_jax.data import DataError  # noqa: PLC0415
    try:
      s = suite.load(args.suite, args.preset, overrides)
      results = runner.run(s, args.workdir)
    except (suite.SuiteError, runner.BenchError, DataError) as e:
      raise user_error(str(e)) from None
    print(f"bench {s.name} ({s.preset}): report in {args.workdir}/report.md")
    for line in results["paper_finding"]:
      print(line)
    return 0

  from mvae_jax.bench import suite  # noqa: PLC0415  (light: ml_collections only)
  p = sub.add_parser(
      "bench", help="compare configs (flat vs hierarchical): train, evaluate, report",
      formatter_class=argparse.RawDescriptionHelpFormatter,
      description="Trains each config of a suite (or reuses the workdirs it names) with one "
      "budget, evaluates all on the same held-out windows (reconstruction table, interpolation "
      "study, attribute matrix, throughput) and writes report.md, results.json and PNG plots "
      "into --workdir. A killed bench resumes where it stopped when rerun with the same command.",
      epilog=f"suites ({suite.SUITE_DIR}): {', '.join(suite.names())}\n"
      "Override any suite key with --config.KEY=VALUE, e.g. --config.train.num_steps=500 "
      "--config.eval.evaluations='[\"reconstruction\"]'.\n"
      "example: mvae bench melody_16bar --workdir bench_out/mel16 --preset quick")
  p.add_argument("suite", help="a suite name or the path of a suite file")
  p.add_argument("--workdir", required=True, help="output folder (resumed if it holds this bench)")
  p.add_argument("--preset", default="quick", choices=list(suite.PRESETS),
                 help="quick: 2 CPU cores, about 30 min; paper: the paper's sizes, for a pod")
  p.set_defaults(func=bench_cmd)
