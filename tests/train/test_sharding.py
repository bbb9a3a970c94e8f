"""Train-state shardings come from logical axis names and the rules table; wrong rules fail."""

from __future__ import annotations

import jax
import pytest

from mvae_jax import config
from mvae_jax.train import loop, sharding


def test_adam_moments_shard_like_their_parameters():
  cfg = config.load("cat-mel_2bar_small_tiny", [
      "--config.train.model_parallelism=2",
      "--config.train.logical_axis_rules=[['lstm_in', None], ['gates', 'model'], "
      "['embed', None], ['mlp', None], ['hidden', None], ['vocab', 'model']]"])
  run = loop.Run(cfg, sharding.make_mesh(2, jax.devices()[:4]))
  sh = run.state_sharding
  kernel = sh.params["decoder"]["multi_rnn_cell"]["cell_0"]["lstm_cell"]["kernel"]
  assert kernel.spec == jax.sharding.PartitionSpec(None, "model")
  adam = sh.opt_state[1]
  for moments in (adam.mu, adam.nu):
    assert jax.tree.leaves(moments) == jax.tree.leaves(sh.params)
  assert adam.count.spec == sh.step.spec == jax.sharding.PartitionSpec()


@pytest.mark.parametrize("rules,words", [
    ([["lstm_in", None], ["embed", None], ["mlp", None], ["hidden", None], ["vocab", None]],
     ["no rule for logical axis 'gates'"]),
    ([["lstm_in", None], ["gates", None], ["gate", None], ["embed", None], ["mlp", None],
      ["hidden", None], ["vocab", None]], ["rule for 'gate'"]),
    ([["lstm_in", None], ["gates", "tensor"], ["embed", None], ["mlp", None], ["hidden", None],
      ["vocab", None]], ["mesh axis 'tensor'"]),
])
def test_wrong_rules_fail_loudly(rules, words):
  cfg = config.load("cat-mel_2bar_small_tiny", [f"--config.train.logical_axis_rules={rules}"])
  with pytest.raises(ValueError) as e:
    loop.Run(cfg, sharding.make_mesh(1, jax.devices()[:1]))
  assert all(w in str(e.value) for w in words) and "--config.train.logical_axis_rules" in str(
      e.value)


@pytest.mark.parametrize("name", ["cat-mel_2bar_small_tiny", "hierdec-mel_16bar_tiny"])
def test_data_parallel_step_never_gathers_the_batch(name):
  """On 8 data-parallel devices the compiled train step's only collectives are all-reduces
  (the gradients): no activation of the sharded batch is gathered onto every device, which
  would make each device compute every weight gradient over the whole batch."""
  import re  # noqa: PLC0415

  from mvae_jax.bench import throughput  # noqa: PLC0415
  cfg = config.load(name, ["--config.train.batch_size=16"])
  run = loop.Run(cfg, sharding.make_mesh(1, jax.devices()))
  assert run.mesh.devices.size == 8
  state = run.init_state()
  batch = sharding.global_batch(throughput.random_batch(run.conv, run.local_batch), run.mesh)
  hlo = run.train_step.lower(state, batch, run.rng).compile().as_text()
  collectives = set(re.findall(r"\b(all-gather|all-to-all|collective-permute|all-reduce|"
                               r"reduce-scatter)(?:-start)?\(", hlo))
  assert collectives == {"all-reduce"}, collectives
