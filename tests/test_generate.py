"""Using a trained model: the Python API, the commands, their files and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE_MIDI
from mvae_jax import cli, config, generate
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


# --- every flag of sample, interpolate, attributes and eval does what its help says -------------


def _spy(monkeypatch, name):
  """Records the arguments of TrainedModel.<name> and calls it."""
  calls, orig = [], getattr(generate.TrainedModel, name)

  def spy(self, *args, **kwargs):
    calls.append((args, kwargs))
    return orig(self, *args, **kwargs)
  monkeypatch.setattr(generate.TrainedModel, name, spy)
  return calls


def _loads(monkeypatch):
  loaded, orig = [], generate.TrainedModel.load
  monkeypatch.setattr(generate.TrainedModel, "load",
                      classmethod(lambda cls, p, **k: loaded.append(orig(p, **k)) or loaded[-1]))
  return loaded


def test_sample_and_interpolate_flags_are_passed_on(trained, tmp_path, monkeypatch, capsys):
  loaded, calls = _loads(monkeypatch), _spy(monkeypatch, "sample")
  out = tmp_path / "s"
  assert cli.main(["sample", "--checkpoint", os.path.join(trained, "checkpoints", "20"),
                   "--num", "2", "--temperature", "0.25", "--seed", "3", "--out", str(out)]) == 0
  assert loaded[-1].step == 20 and calls == [((2,), {"temperature": 0.25, "seed": 3})]
  assert len([f for f in os.listdir(out) if f.endswith(".mid")]) == 2
  assert cli.main(["sample", "--workdir", trained, "--num", "1", "--out", str(out)]) == 0
  assert loaded[-1].step == 40
  calls = _spy(monkeypatch, "interpolate")
  assert cli.main(["interpolate", "--workdir", trained, "--input_midi_1", FOLK, "--input_midi_2",
                   FOLK2, "--num", "3", "--window_1", "1", "--window_2", "2", "--method",
                   "linear", "--temperature", "0.5", "--seed", "5", "--out", str(out)]) == 0
  (args, kwargs), = calls
  assert args[2] == 3 and kwargs == {"method": "linear", "temperature": 0.5, "window": (1, 2),
                                     "seed": 5}
  assert len([f for f in os.listdir(out) if "interpolate" in f and f.endswith(".mid")]) == 3


def test_attributes_flags_are_passed_on(trained, data_dir, tmp_path, monkeypatch, capsys):
  from mvae_jax import data as data_lib
  vec_calls, table_calls = _spy(monkeypatch, "attribute_vectors"), _spy(monkeypatch,
                                                                        "attribute_table")
  assert cli.main(["attributes", "compute", "--workdir", trained, "--split", "train", "--num",
                   "16", "--seed", "1", "--scale", "0.5"]) == 0
  m = generate.TrainedModel.load(trained)
  windows = data_lib.load_windows("midi_dir", "train", "mel_2bar", data_dir=data_dir,
                                  midi_dir=FIXTURE_MIDI)
  pick = np.random.default_rng(1).permutation(len(windows))[:16]
  np.testing.assert_array_equal(vec_calls[0][0][0], windows.labels[pick[:8]])
  assert table_calls[0][0][2] == 0.5 and "0.5x" in capsys.readouterr().out
  calls = _spy(monkeypatch, "apply_attribute")
  out = tmp_path / "a"
  assert cli.main(["attributes", "apply", "--checkpoint", os.path.join(trained, "checkpoints",
                                                                        "40"),
                   "--input_midi", FOLK, "--attribute", "avg_interval", "--scale", "2",
                   "--window", "1", "--temperature", "0.3", "--seed", "4", "--out", str(out)]) == 0
  assert [c[0][2] for c in calls] == [-2.0, 0.0, 2.0]
  assert all(c[1] == {"window": 1, "temperature": 0.3, "seed": 4} for c in calls)
  vectors = np.load(os.path.join(trained, "attribute_vectors.npz"))["vectors"]
  np.testing.assert_array_equal(calls[0][0][1], vectors[attributes.NAMES.index("avg_interval")])
  assert sorted(os.listdir(out))[0].startswith(f"{m.cfg.name}_attribute_avg_interval")


def test_eval_flags_and_the_hint_for_a_checkpoint_of_another_config(trained, data_dir, capsys):
  saved = os.path.join(trained, "config.json")
  assert cli.main(["eval", "--config", saved, "--workdir", trained, "--step", "20", "--split",
                   "train", "--config.train.eval_batches", "1"]) == 0
  out = capsys.readouterr().out
  assert '"step": 20' in out and os.path.exists(os.path.join(trained, "eval_20.json"))
  overrides = ["--config.data.dataset=midi_dir", f"--config.data.midi_dir={FIXTURE_MIDI}",
               f"--config.data.data_dir={data_dir}", "--config.train.batch_size=16"]
  assert cli.main(["eval", "--config", "cat-mel_2bar_small", "--workdir", trained,
                   *overrides]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and f"--config {saved}" in err, err
  assert cli.main(["eval", "--config", saved, "--workdir", trained]) == 0  # the hint, tried
  capsys.readouterr()
  # same shapes, another encoding: refused, where it used to be evaluated silently
  assert cli.main(["eval", "--workdir", trained, "--config.data.converter=mel_16bar"]) == 2
  err = capsys.readouterr().err.strip()
  assert "data.converter: 'mel_2bar' -> 'mel_16bar'" in err and saved in err, err
  assert "without overriding model.* or data.converter" in err, err
  # no --config: the workdir's own; another loss weighting is allowed, noted and recorded
  assert cli.main(["eval", "--workdir", trained, "--config.loss.free_bits=48"]) == 0
  out, err = capsys.readouterr()
  assert '"step": 40' in out and "loss.free_bits" in err and "note" in err, (out, err)
  with open(os.path.join(trained, "eval_40.json")) as f:
    assert json.load(f)["loss_unlike_training"] == {
        "loss.free_bits": {"trained": 0.0, "evaluated": 48.0}}


def test_bad_invocations_get_one_true_line(trained, tmp_path, capsys):
  assert cli.main(["sample"]) == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and "--workdir" in err
  for bad in (["--num", "0"], ["--temperature", "-1"], ["--config.nonsense=1"]):
    with pytest.raises(SystemExit) as e:
      cli.main(["sample", "--workdir", trained, *bad])
    err = capsys.readouterr().err
    assert e.value.code == 2 and bad[0] in err and "Traceback" not in err, err
  assert "apply to train, eval, import and bench" in err
  corrupt = tmp_path / "corrupt"
  corrupt.mkdir()
  (corrupt / "config.json").write_text('{"name": ')
  assert cli.main(["sample", "--workdir", str(corrupt)]) == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and str(corrupt / "config.json") in err, err


def test_checkpoint_of_another_model_is_one_line_without_noise(trained, tmp_path):
  import shutil
  other = tmp_path / "other"
  shutil.copytree(os.path.join(trained, "checkpoints"), other / "checkpoints")
  from mvae_jax import checkpoints
  checkpoints.write_config(config.load("cat-mel_2bar_small"), str(other))
  r = subprocess.run([sys.executable, "-m", "mvae_jax", "sample", "--workdir", str(other)],
                     capture_output=True, text=True, timeout=600)
  assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
  assert "does not fit this model" in r.stderr and "--workdir" in r.stderr
