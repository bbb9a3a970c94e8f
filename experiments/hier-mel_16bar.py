"""Magenta's `hier-mel_16bar` configuration (SPEC §5)."""

from mvae_jax.experiments import common


def get_config():
  return common.config(
      name="hier-mel_16bar", converter='mel_16bar', dataset='folk_melodies', encoder='hierarchical', decoder='hierarchical', z_size=512, enc_rnn_size=[1024], dec_rnn_size=[1024, 1024], free_bits=256, max_beta=0.2, beta_rate=0.0, batch_size=512, transpose=(-5, 5))
