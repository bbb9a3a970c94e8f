"""Magenta's `cat-mel_2bar_big` configuration (SPEC §5)."""

from mvae_jax.experiments import common


def get_config():
  return common.config(
      name="cat-mel_2bar_big", converter='mel_2bar', dataset='folk_melodies', z_size=512, enc_rnn_size=[2048], dec_rnn_size=[2048, 2048, 2048], free_bits=0, max_beta=0.5, beta_rate=0.99999, batch_size=512, sampling=('inverse_sigmoid', 1000), transpose=(-5, 5))
