"""The paper's 16-bar hierarchical drum model (no Magenta config of this name): hierdec-mel_16bar's sizes on the drum encoding."""

from mvae_jax.experiments import common


def get_config():
  return common.config(
      name="hierdec-drums_16bar", converter='drums_16bar', dataset='game_midi', decoder='hierarchical', z_size=512, enc_rnn_size=[2048, 2048], dec_rnn_size=[1024, 1024], free_bits=256, max_beta=0.2, beta_rate=0.0, batch_size=512)
