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
  assert cli._allocator_for(train) == ("system" if allocator.huge_pages_available()
                                       else "tcmalloc")
  assert cli._allocator_for([*train, "--help"]) is None
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


def test_without_huge_pages_a_large_step_stays_on_tcmalloc(monkeypatch):
  """glibc without huge pages (older than 2.35, THP off, not glibc) is the slowest choice."""
  monkeypatch.setattr(allocator, "huge_pages_available", lambda: False)
  assert allocator.default_for(128 << 20) == "tcmalloc"
  monkeypatch.setattr(allocator, "huge_pages_available", lambda: True)
  assert allocator.default_for(128 << 20) == "system"
  assert allocator.default_for(16 << 20) == "tcmalloc"


@pytest.mark.parametrize("default", [None, "system", "tcmalloc"])
@pytest.mark.parametrize("setting", [None, "system", "tcmalloc"])
@pytest.mark.parametrize("preload", [None, "/usr/lib/libtcmalloc_minimal.so.4", "/x/libother.so"])
@pytest.mark.parametrize("tunables", [None, "glibc.malloc.hugetlb=1", "glibc.malloc.arena_max=2"])
def test_the_new_environment_is_final(monkeypatch, default, setting, preload, tunables):
  """One re-execution at most: the environment it makes asks for none."""
  monkeypatch.setattr(allocator, "library", lambda: "/usr/lib/libtcmalloc_minimal.so.4")
  env = {k: v for k, v in {allocator.ENV: setting, "LD_PRELOAD": preload,
                           "GLIBC_TUNABLES": tunables}.items() if v is not None}
  new = allocator.reexec_env(env, default)
  assert new is None or allocator.reexec_env(new, default) is None
  if setting is not None:  # the user's choice wins over the default
    assert allocator.reexec_env(env, default) == allocator.reexec_env(env)


def test_mvae_train_reads_its_config_before_jax_loads():
  """The allocator is chosen before the re-execution, which cannot load one into a process
  that has imported JAX."""
  code = ("import sys; from mvae_jax import cli; "
          "cli._allocator_for(['train', '--config', 'hierdec-mel_16bar', '--workdir', 'w']); "
          "print('jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       timeout=120).stdout.strip()
  assert out == "False"


def test_a_meaningless_mvae_malloc_is_one_line():
  r = subprocess.run([sys.executable, "-m", "mvae_jax", "sample", "--help"], capture_output=True,
                     text=True, timeout=120, env={**os.environ, allocator.ENV: "glibc"})
  assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
  assert "MVAE_MALLOC='glibc': use MVAE_MALLOC=tcmalloc or MVAE_MALLOC=system" in r.stderr
