"""The shipped suites load for both presets, and the paper preset keeps the paper's sizes."""

import pytest

from mvae_jax import config
from mvae_jax.bench import suite


@pytest.mark.parametrize("name", ["melody_16bar", "melody_2bar", "drums_16bar", "trio_16bar"])
def test_shipped_suites_load(name):
  assert name in suite.names()
  quick, paper = suite.load(name, "quick"), suite.load(name, "paper")
  for s in (quick, paper):
    cfgs = suite.model_configs(s)
    assert len({c.data.converter for _, c in cfgs}) == 1  # one encoding per suite
    assert {c.train.num_steps for _, c in cfgs} == {s.train.num_steps}  # one budget for all
    assert any(c.model.decoder == "hierarchical" for _, c in cfgs) or name == "melody_2bar"
  for (_, c), plain in zip(suite.model_configs(paper), paper.configs):
    ref = config.load(plain)  # the experiment as Magenta defines it
    assert c.train.batch_size == ref.train.batch_size and c.model == ref.model
  for (_, c), plain in zip(suite.model_configs(quick), quick.configs):
    assert plain.endswith("_tiny")


def test_overrides_reach_every_config():
  s = suite.load("melody_16bar", "quick", ["--config.train.num_steps=7",
                                            "--config.train.overrides=['--config.model.z_size=4']"])
  assert all(c.train.num_steps == 7 and c.model.z_size == 4 for _, c in suite.model_configs(s))
  with pytest.raises(suite.SuiteError, match="model.z_siz"):
    suite.load("melody_16bar", "quick", ["--config.train.overrides=['--config.model.z_siz=4']"])
  with pytest.raises(suite.SuiteError, match="--preset"):
    suite.load("melody_16bar", "fast")
