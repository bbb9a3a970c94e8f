"""The one config schema every experiment shares, and the loader.

Every key is declared here with a comment; experiment files call `config(...)` with Magenta's
hyperparameters for that configuration, `_tiny` siblings load their parent and shrink it. Configs
come back locked: `--config.typo=1` is an error, not a silent new key.
"""

from __future__ import annotations

import importlib.util
import os

import ml_collections

HERE = os.path.dirname(os.path.abspath(__file__))


def config(*, name: str, converter: str, dataset: str, encoder: str = "bidirectional",
           decoder: str = "flat", z_size: int, enc_rnn_size, dec_rnn_size, free_bits: float,
           max_beta: float, beta_rate: float, batch_size: int, sampling=("constant", 0.0),
           transpose=(0, 0), core_per_stream: bool = False) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = name  # Magenta's configuration name
  c.seed = 0  # everything random (init, data order, augmentation, sampling) derives from it

  c.data = ml_collections.ConfigDict()
  c.data.dataset = dataset  # folk_melodies | game_midi | mma_grooves | midi_dir
  c.data.midi_dir = ""  # for dataset=midi_dir: the folder of MIDI files
  c.data.data_dir = ""  # where prepared data sets live ("": $MVAE_DATA_DIR or ~/mvae_data)
  c.data.converter = converter  # mel_2bar | mel_16bar | drums_2bar | drums_16bar | trio_16bar
  c.data.transpose_range = list(transpose)  # semitones, drawn per example per epoch
  c.data.max_windows_per_piece = 5  # Magenta's max_tensors_per_notesequence (0: no cap)
  c.data.eval_split = "validation"

  c.model = ml_collections.ConfigDict()
  c.model.encoder = encoder  # bidirectional | hierarchical
  c.model.decoder = decoder  # flat | hierarchical
  c.model.z_size = z_size
  c.model.enc_rnn_size = list(enc_rnn_size)  # one BiLSTM layer per entry
  c.model.dec_rnn_size = list(dec_rnn_size)  # LSTM stack (conductor and core for hierarchical)
  c.model.level_lengths = [16, 16]  # hierarchical: bars, steps per bar
  c.model.core_per_stream = core_per_stream  # hierarchical trio: one core decoder per instrument

  c.loss = ml_collections.ConfigDict()
  c.loss.free_bits = float(free_bits)  # on the per-example KL total
  c.loss.max_beta = float(max_beta)
  c.loss.beta_rate = float(beta_rate)  # beta = max_beta * (1 - beta_rate^step); 0: constant

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-3
  c.optim.decay_rate = 0.9999  # lr = (lr - min) * decay_rate^step + min
  c.optim.min_learning_rate = 1e-5
  c.optim.grad_clip = 1.0  # global norm
  c.optim.grad_norm_clip_to_zero = 10000.0  # skip the update at or above this norm

  c.sampling = ml_collections.ConfigDict()
  c.sampling.schedule = sampling[0]  # constant | inverse_sigmoid | exponential
  c.sampling.rate = float(sampling[1])

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = batch_size  # global, across all devices and hosts
  c.train.num_steps = 200000
  c.train.log_every_steps = 100
  c.train.eval_every_steps = 1000
  c.train.eval_batches = 10  # 0: the whole eval split
  c.train.checkpoint_every_steps = 1000
  c.train.keep_checkpoints = 3
  # float32 | bfloat16: mixed precision, every LSTM matmul (weight gradients included) from
  # bfloat16 operands with float32 accumulation; gate math, params and optimizer stay float32
  c.train.compute_dtype = "float32"
  # float32 | bfloat16: the same for h·W_h only (CPU speed at small batches, where that matmul
  # is memory-bound); ignored when compute_dtype is bfloat16
  c.train.recurrent_dtype = "float32"
  c.train.max_skipped_in_a_row = 50  # stop after this many skipped (non-finite) updates in a row
  c.train.model_parallelism = 1  # size of the mesh's 'model' axis
  # logical parameter axis -> mesh axis; e.g. [["gates", "model"], ["vocab", "model"]]
  c.train.logical_axis_rules = [["lstm_in", None], ["gates", None], ["embed", None],
                                ["mlp", None], ["hidden", None], ["vocab", None]]
  return c


def path_of(name_or_path: str) -> str:
  """The file of an experiment name (`cat-mel_2bar_small`) or path (`experiments/x.py`)."""
  path = name_or_path
  if not path.endswith(".py"):
    path = os.path.join(HERE, f"{name_or_path}.py")
  if not os.path.exists(path):
    raise FileNotFoundError(f"config {name_or_path!r} not found; experiments are: "
                            f"{', '.join(names())}")
  return path


def load(name_or_path: str) -> ml_collections.ConfigDict:
  """A config by experiment name (`cat-mel_2bar_small`) or by path (`experiments/x.py`), locked.

  Plain loading; `mvae_jax.config.load` adds command-line overrides."""
  path = path_of(name_or_path)
  spec = importlib.util.spec_from_file_location(f"mvae_experiment_{abs(hash(path))}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  cfg = mod.get_config()
  cfg.lock()
  return cfg


def names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(HERE)
                if f.endswith(".py") and not f.startswith("_") and f != "common.py")


def tiny(parent: str, **model) -> ml_collections.ConfigDict:
  """A sibling of `parent` that learns something real in minutes on a 2-core CPU."""
  c = load(parent)
  c.unlock()
  c.name = parent + "_tiny"
  c.model.z_size = model.get("z_size", 32)
  c.model.enc_rnn_size = model.get("enc_rnn_size", [128])
  c.model.dec_rnn_size = model.get("dec_rnn_size", [128, 128])
  c.train.batch_size = model.get("batch_size", 64)
  c.train.num_steps = model.get("num_steps", 2000)
  c.optim.learning_rate = 3e-3  # small models learn faster at a higher rate; decays as usual
  c.train.log_every_steps = 50
  c.train.eval_every_steps = 500
  c.train.checkpoint_every_steps = 500
  c.train.eval_batches = 4
  return c
