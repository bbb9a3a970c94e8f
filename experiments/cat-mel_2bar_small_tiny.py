"""`cat-mel_2bar_small` shrunk to learn something real in minutes on a 2-core CPU."""

from mvae_jax.experiments import common


def get_config():
  return common.tiny("cat-mel_2bar_small")
