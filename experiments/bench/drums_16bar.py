"""16-bar drums: the flat decoder against the hierarchical one, on game_midi (the paper's
16-bar drum pair; the attribute matrix is melodic, so it is not run)."""

from mvae_jax.bench.suite import paper_suite, suite_config

CONFIGS = ["flat-drums_16bar", "hierdec-drums_16bar"]
LABELS = ["flat", "hierdec"]


def get_config(preset="quick"):
  if preset == "paper":
    return paper_suite(
        name="drums_16bar", configs=CONFIGS, labels=LABELS, dataset="game_midi", batch_size=512,
        evaluations=["reconstruction", "interpolation", "throughput"],
        description="16-bar drums: flat vs hierarchical decoders at the paper's sizes.")
  return suite_config(
      name="drums_16bar", preset=preset, configs=[c + "_tiny" for c in CONFIGS], labels=LABELS,
      dataset="game_midi", num_steps=1000, batch_size=32,
      evaluations=["reconstruction", "interpolation", "throughput"], eval_windows=95,
      interpolation_pairs=32, lm_train_windows=2000,
      description="16-bar drums: flat vs hierarchical decoders, `_tiny` sizes on a 2-core CPU.")
