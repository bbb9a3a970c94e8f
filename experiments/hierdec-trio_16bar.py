"""Magenta's `hierdec-trio_16bar` configuration (SPEC §5)."""

from mvae_jax.experiments import common


def get_config():
  return common.config(
      name="hierdec-trio_16bar", converter='trio_16bar', dataset='game_midi', decoder='hierarchical', core_per_stream=True, z_size=512, enc_rnn_size=[2048, 2048], dec_rnn_size=[1024, 1024], free_bits=256, max_beta=0.2, beta_rate=0.0, batch_size=256, transpose=(-5, 5))
