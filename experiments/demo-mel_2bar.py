"""The main job's model (`mvae demo`): `cat-mel_2bar_small` sized and tuned for 2 CPU cores.

The whole demo (data build included) must finish in 8 minutes on 2 cores, so the settings were
chosen by measurement (README, "The demo's figures"): a small model, teacher forcing (scheduled
sampling makes every step sequential), no transposition (the held-out windows are untransposed
folk tunes), a constant β with free bits so that samples from the prior are music.
"""

from mvae_jax.experiments import common


def get_config():
  c = common.tiny("cat-mel_2bar_small")
  c.name = "demo-mel_2bar"
  c.data.transpose_range = [0, 0]
  c.sampling.schedule = "constant"
  c.sampling.rate = 0.0
  c.train.num_steps = 1500
  c.train.eval_every_steps = 250
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = 500
  c.train.eval_batches = 4
  return c
