"""Magenta's `flat-trio_16bar` configuration (SPEC §5)."""

from mvae_jax.experiments import common


def get_config():
  return common.config(
      name="flat-trio_16bar", converter='trio_16bar', dataset='game_midi', z_size=512, enc_rnn_size=[2048, 2048], dec_rnn_size=[2048, 2048, 2048], free_bits=0, max_beta=1.0, beta_rate=0.0, batch_size=256, transpose=(-5, 5))
