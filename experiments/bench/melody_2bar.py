"""2-bar melodies: Magenta's small and big flat models (2-bar models have no hierarchy; the
paper's Table 1 reports them flat)."""

from mvae_jax.bench.suite import EVALUATIONS, paper_suite, suite_config

CONFIGS = ["cat-mel_2bar_small", "cat-mel_2bar_big"]
LABELS = ["small", "big"]


def get_config(preset="quick"):
  if preset == "paper":
    return paper_suite(name="melody_2bar", configs=CONFIGS, labels=LABELS,
                       dataset="folk_melodies", batch_size=512,
                       description="2-bar melody: small vs big flat models at Magenta's sizes.")
  return suite_config(
      name="melody_2bar", preset=preset, configs=[c + "_tiny" for c in CONFIGS], labels=LABELS,
      dataset="folk_melodies", num_steps=1500, batch_size=64,
      evaluations=EVALUATIONS,
      eval_windows=1024, interpolation_pairs=128, lm_train_windows=5000, attribute_windows=1000,
      description="2-bar melody: small vs big flat models, `_tiny` sizes on a 2-core CPU.")
