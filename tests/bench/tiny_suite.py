"""A bench suite small enough for the default tests: two 16-bar melody models (flat and
hierarchical) of 16-unit LSTMs, 10 steps each, every evaluation on a few held-out windows."""

from mvae_jax.bench.suite import suite_config


def get_config(preset="quick"):
  s = suite_config(
      name="tiny", preset=preset, configs=["flat-mel_16bar_tiny", "hierdec-mel_16bar_tiny"],
      labels=["flat", "hierdec"], dataset="folk_melodies", num_steps=10, batch_size=8,
      evaluations=["reconstruction", "interpolation", "attributes", "throughput"],
      eval_windows=16, interpolation_pairs=4, lm_train_windows=50, attribute_windows=16,
      overrides=["--config.model.z_size=8", "--config.model.enc_rnn_size=[16]",
                 "--config.model.dec_rnn_size=[16, 16]"],
      description="The test suite's tiny bench.")
  s.eval.batch_size = 16
  s.throughput.steps = 2
  return s
