"""Magenta's `cat-drums_2bar_big` configuration (SPEC §5)."""

from mvae_jax.experiments import common


def get_config():
  return common.config(
      name="cat-drums_2bar_big", converter='drums_2bar', dataset='game_midi', z_size=512, enc_rnn_size=[2048], dec_rnn_size=[2048, 2048, 2048], free_bits=48, max_beta=0.2, beta_rate=0.99999, batch_size=512, sampling=('inverse_sigmoid', 1000))
