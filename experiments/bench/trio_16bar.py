"""16-bar trios (melody, bass, drums): the flat multi-output decoder against the hierarchical
one with a core per instrument, on game_midi (attributes are measured on the melody)."""

from mvae_jax.bench.suite import EVALUATIONS, paper_suite, suite_config

CONFIGS = ["flat-trio_16bar", "hierdec-trio_16bar"]
LABELS = ["flat", "hierdec"]


def get_config(preset="quick"):
  if preset == "paper":
    return paper_suite(
        name="trio_16bar", configs=CONFIGS, labels=LABELS, dataset="game_midi", batch_size=256,
        description="16-bar trio: flat vs hierarchical decoders at the paper's sizes.")
  return suite_config(
      name="trio_16bar", preset=preset, configs=[c + "_tiny" for c in CONFIGS], labels=LABELS,
      dataset="game_midi", num_steps=1000, batch_size=32,
      evaluations=EVALUATIONS,
      eval_windows=293, interpolation_pairs=32, lm_train_windows=2000, attribute_windows=293,
      description="16-bar trio: flat vs hierarchical decoders, `_tiny` sizes on a 2-core CPU.")
