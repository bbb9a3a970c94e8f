"""`MVAE_MALLOC=system` runs on glibc with transparent huge pages (what large batches want: the
speed of TCMalloc at glibc's memory), leaving a user's own GLIBC_TUNABLES choice alone."""

import os
import subprocess
import sys

import pytest

from mvae_jax import allocator

CODE = ("import os; from mvae_jax import allocator; "
        "print(os.environ.get('GLIBC_TUNABLES'), '|', allocator.describe())")
# re-executes itself as the CLI does, then prints (in the new process, or here if none)
SHOW = f"from mvae_jax import allocator; allocator.reexec_with_tcmalloc(['-c', {CODE!r}]); {CODE}"


def _run(**env):
  base = {k: v for k, v in os.environ.items()
          if k not in ("GLIBC_TUNABLES", "LD_PRELOAD", allocator.ENV)}
  r = subprocess.run([sys.executable, "-c", SHOW], env={**base, **env}, capture_output=True,
                     text=True, check=True, timeout=60)
  return r.stdout.strip()


@pytest.mark.skipif(sys.platform != "linux", reason="glibc tunables are Linux's")
def test_system_malloc_asks_for_huge_pages():
  assert _run(MVAE_MALLOC="system") == (
      "glibc.malloc.hugetlb=1 | system malloc, huge pages")
  assert _run(MVAE_MALLOC="system", GLIBC_TUNABLES="glibc.malloc.arena_max=2") == (
      "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1 | system malloc, huge pages")
  # the user's own choice stands
  assert _run(MVAE_MALLOC="system", GLIBC_TUNABLES="glibc.malloc.hugetlb=0") == (
      "glibc.malloc.hugetlb=0 | system malloc")


@pytest.mark.skipif(allocator.library() is None, reason="no TCMalloc on this machine")
def test_system_malloc_leaves_an_inherited_tcmalloc():
  """A child of a TCMalloc process asked for the system malloc gets it."""
  assert _run(MVAE_MALLOC="system", LD_PRELOAD=allocator.library()) == (
      "glibc.malloc.hugetlb=1 | system malloc, huge pages")


@pytest.mark.skipif(allocator.library() is None, reason="no TCMalloc on this machine")
def test_default_is_tcmalloc():
  assert _run().endswith("| tcmalloc")


def _run_default(default, **env):
  show = (f"from mvae_jax import allocator; allocator.reexec_with_tcmalloc(['-c', {CODE!r}], "
          f"{default!r}); {CODE}")
  base = {k: v for k, v in os.environ.items()
          if k not in ("GLIBC_TUNABLES", "LD_PRELOAD", allocator.ENV)}
  return subprocess.run([sys.executable, "-c", show], env={**base, **env}, capture_output=True,
                        text=True, check=True, timeout=60).stdout.strip()


def test_train_picks_the_allocator_by_its_step_unless_told():
  """`mvae train` of a large step (cat-mel_2bar_small at its batch of 512: 128 MiB arrays) runs
  on glibc with huge pages, a small one on TCMalloc; MVAE_MALLOC decides where set."""
  from mvae_jax import cli
  train = ["train", "--config", "cat-mel_2bar_small", "--workdir", "/nonexistent/run"]
  assert cli._allocator_for(train) == "system"
  assert cli._allocator_for([*train, "--config.train.batch_size=64"]) == "tcmalloc"
  assert cli._allocator_for(["train", "--config", "demo-mel_2bar", "--workdir", "w"]) == "tcmalloc"
  assert cli._allocator_for([*train, "--config.train.batch_sise=64"]) is None  # run says why
  assert cli._allocator_for(["sample", "--workdir", "w"]) is None
  if sys.platform == "linux":
    assert _run_default("system") == "glibc.malloc.hugetlb=1 | system malloc, huge pages"
  if allocator.library() is not None:
    assert _run_default("tcmalloc").endswith("| tcmalloc")
    assert _run_default("system", MVAE_MALLOC="tcmalloc").endswith("| tcmalloc")
    assert _run_default("tcmalloc", MVAE_MALLOC="system").endswith("| system malloc, huge pages")
