"""`cat-drums_2bar_big` shrunk to learn something real in minutes on a 2-core CPU."""

from mvae_jax.experiments import common


def get_config():
  return common.tiny("cat-drums_2bar_big")
