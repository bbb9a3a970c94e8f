"""`hier-mel_16bar` shrunk to learn something real in minutes on a 2-core CPU."""

from mvae_jax.experiments import common


def get_config():
  return common.tiny("hier-mel_16bar", enc_rnn_size=[64], dec_rnn_size=[128, 128], batch_size=32)
