"""Shared fixtures: the Magenta reference files and data sets prepared once per session."""

from __future__ import annotations

import json
import os

import jax
import pytest

# 8 simulated CPU devices for the sharding tests (must precede JAX's first use); single-device
# code keeps running on device 0.
jax.config.update("jax_num_cpu_devices", 8)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "magenta")
FIXTURE_MIDI = os.path.join(FIXTURES, "midi")


@pytest.fixture(scope="session")
def fixture_index() -> dict:
  with open(os.path.join(FIXTURES, "converters_index.json")) as f:
    return json.load(f)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
  """Where the session's prepared data sets live ($MVAE_TEST_DATA_DIR reuses a folder)."""
  return os.environ.get("MVAE_TEST_DATA_DIR") or str(tmp_path_factory.mktemp("mvae_data"))


@pytest.fixture(scope="session")
def fixture_dataset(data_dir):
  """midi_dir over the 20 Magenta fixture MIDI files."""
  from mvae_jax import datasets
  builder, stats, _ = datasets.prepare("midi_dir", data_dir=data_dir, midi_dir=FIXTURE_MIDI)
  return builder, stats


@pytest.fixture(scope="session")
def folk_dataset(data_dir):
  """The embedded default data set, built from the installed music21 wheel (~30 s on 2 cores)."""
  from mvae_jax import datasets
  from mvae_jax.music import io
  if not io.abc2midi_available():
    pytest.fail("abc2midi missing: apt-get install -y abcmidi (see README)")
  builder, stats, _ = datasets.prepare("folk_melodies", data_dir=data_dir)
  return builder, stats
