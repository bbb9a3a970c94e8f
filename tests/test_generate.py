"""Using a trained model: the Python API, the commands, their files and their errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE_MIDI
from mvae_jax import config, generate
from mvae_jax.music import attributes, converters, io
from mvae_jax.train import loop

FOLK = os.path.join(FIXTURE_MIDI, "folk", "folk_ryan_KittySharpsChampionJig.mid")
FOLK2 = os.path.join(FIXTURE_MIDI, "folk", "folk_ryan_McDonaldsReel.mid")
DRUMS = os.path.join(FIXTURE_MIDI, "freedoom", "fd1_D_E1M1.mid")


@pytest.fixture(scope="module")
def trained(fixture_dataset, data_dir, tmp_path_factory):
  work = str(tmp_path_factory.mktemp("gen") / "run")
  cfg = config.load("cat-mel_2bar_small_tiny", [
      "--config.data.dataset=midi_dir", f"--config.data.midi_dir={FIXTURE_MIDI}",
      f"--config.data.data_dir={data_dir}", "--config.data.eval_split=train",
      "--config.train.batch_size=16", "--config.train.num_steps=40",
      "--config.train.checkpoint_every_steps=20", "--config.train.eval_every_steps=1000",
      "--config.train.log_every_steps=20", "--config.train.eval_batches=1"])
  loop.train(cfg, work, progress=False)
  return work


def test_sampling_is_deterministic_per_seed(trained):
  m = generate.TrainedModel.load(trained)
  a, b, c = m.sample(3, 0.5, seed=1), m.sample(3, 0.5, seed=1), m.sample(3, 0.5, seed=2)
  assert a == b and a != c and len(a) == 3
  assert all(ns.total_time == 4.0 for ns in a)


def test_inputs_with_many_windows_are_chosen_not_fatal(trained):
  m = generate.TrainedModel.load(trained)
  ns = io.read_midi(FOLK)
  n = len(m.windows(ns))
  assert n > 10
  z0, mu0, _ = m.encode([ns])
  z5, mu5, _ = m.encode([ns], window=5)
  assert mu0.shape == (1, 32) and not np.allclose(mu0, mu5)
  with pytest.raises(generate.ModelError) as e:
    m.encode([ns], window=n)
  assert f"has {n} windows" in str(e.value)


def test_decode_then_encode_round_trips(trained):
  m = generate.TrainedModel.load(trained)
  labels = m.windows(io.read_midi(FOLK))[:4].astype(np.int32)
  seqs = [m.conv.to_sequence(l) for l in labels]
  for ns in seqs:
    ns.total_time = 4.0  # one 2-bar window at 120 qpm
  _, mu_seq, _ = m.encode(seqs)
  _, mu_lab, _ = m.encode_labels(labels)
  np.testing.assert_allclose(mu_seq, mu_lab, atol=1e-5)
  out = m.decode(mu_seq, temperature=0.0)
  assert len(m.encode(out)[1]) == 4  # decoded output is encodable again


def test_interpolation_includes_the_endpoints(trained):
  m = generate.TrainedModel.load(trained)
  a, b = io.read_midi(FOLK), io.read_midi(FOLK2)
  path = m.interpolate(a, b, 5)
  assert len(path) == 5
  assert path[0] == m.reconstruct([a])[0] and path[-1] == m.reconstruct([b])[0]
  lin = m.interpolate(a, b, 3, method="linear")
  assert lin[0] == path[0]
  np.testing.assert_allclose(generate.slerp(np.array([1.0, 0]), np.array([0, 1.0]), 0.5),
                             [np.sqrt(0.5), np.sqrt(0.5)])


def test_bad_inputs_get_one_line_reasons(trained, tmp_path):
  m = generate.TrainedModel.load(trained)
  drums = converters._keep_notes(io.read_midi(DRUMS), lambda n: n.is_drum)
  with pytest.raises(generate.ModelError) as e:
    m.encode([drums])
  assert "no 2-bar melody window" in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(generate.ModelError):
    generate.TrainedModel.load(str(tmp_path))
  with pytest.raises(generate.ModelError):
    m.similar(io.read_midi(FOLK), 2, similarity=1.5)
  assert len(m.similar(io.read_midi(FOLK), 2, similarity=0.9)) == 2


def test_commands_write_midi_and_pictures(trained, tmp_path):
  def mvae(*args):
    r = subprocess.run([sys.executable, "-m", "mvae_jax", *args], capture_output=True,
                       text=True, timeout=600)
    return r
  out = tmp_path / "out"
  r = mvae("sample", "--workdir", trained, "--num", "3", "--out", str(out))
  assert r.returncode == 0, r.stderr[-2000:]
  names = sorted(os.listdir(out))
  assert names == ["cat-mel_2bar_small_tiny_sample.png"] + [
      f"cat-mel_2bar_small_tiny_sample_{i:02d}.mid" for i in range(3)]
  assert io.read_midi(str(out / names[1])).notes is not None
  r = mvae("interpolate", "--workdir", trained, "--input_midi_1", FOLK, "--input_midi_2", FOLK2,
           "--num", "4", "--out", str(out))
  assert r.returncode == 0, r.stderr[-2000:]
  assert (out / "cat-mel_2bar_small_tiny_interpolate.png").stat().st_size > 1000
  r = mvae("attributes", "compute", "--workdir", trained, "--split", "train", "--num", "200")
  assert r.returncode == 0, r.stderr[-2000:]
  assert "| note_density |" in r.stdout and os.path.exists(
      os.path.join(trained, "attribute_vectors.npz"))
  r = mvae("attributes", "apply", "--workdir", trained, "--input_midi", FOLK, "--attribute",
           "note_density", "--out", str(out))
  assert r.returncode == 0, r.stderr[-2000:]
  from mvae_jax.music._note_seq import midi_io
  drum_only = str(tmp_path / "drums_only.mid")
  midi_io.note_sequence_to_midi_file(
      converters._keep_notes(io.read_midi(DRUMS), lambda n: n.is_drum), drum_only)
  r = mvae("interpolate", "--workdir", trained, "--input_midi_1", drum_only, "--input_midi_2",
           FOLK, "--out", str(out))
  lines = [l for l in r.stderr.splitlines() if l.startswith("mvae")]
  assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
  r = mvae("sample", "--workdir", str(tmp_path / "nowhere"))
  assert r.returncode == 2 and "not a training workdir" in r.stderr


def test_attributes_by_hand():
  # C4 on step 0, E4 on step 3 (16th off-beat), G#4 on step 6 (8th off-beat); 16 steps
  labels = np.zeros(16, int)
  labels[0], labels[3], labels[6] = 60 - 19, 64 - 19, 68 - 19
  a = dict(zip(attributes.NAMES, attributes.attributes(labels)))
  assert a["c_diatonic"] == pytest.approx(2 / 3)
  assert a["note_density"] == pytest.approx(3 / 16)
  assert a["avg_interval"] == pytest.approx(4.0)
  assert a["syncopation_16th"] == pytest.approx(1 / 3)
  assert a["syncopation_8th"] == pytest.approx(1 / 3)
  mu = np.arange(8.0)[:, None] * np.ones((8, 2))
  attrs = np.tile(np.arange(8.0)[:, None], (1, 5))
  np.testing.assert_allclose(attributes.attribute_vectors(mu, attrs)[0], [6.0, 6.0])
