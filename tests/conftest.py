"""Test-session defaults (an XLA_FLAGS already in the environment is used as given, plus the
YNNPACK workaround below when it does not set that flag itself).

* One host device (tests that need several start a subprocess with their own flags).
* --xla_backend_optimization_level=0: XLA compilation is about two thirds of the default
  test time on 2 CPU cores; without fast-math (XLA's CPU default) the LLVM optimisation level
  changes speed, not results, and the suite passes identically at the default level:
  XLA_FLAGS=--xla_force_host_platform_device_count=1 pytest tests   (full optimisation).
* --xla_cpu_use_fusion_emitters=false (jaxlib >= 0.10): XLA's older elementwise emitters
  compile about 40% faster (a small plan: 1.0 s instead of 1.7 s) and cut the default run
  from 6:08 to 3:38 on 2 cores (same tree, session 10). Results agree with the default
  emitters to float rounding (~1e-6), not bit for bit: tests that compare two different
  compiled programs use a tolerance.
* --xla_cpu_multi_thread_eigen=false: the two pytest-xdist workers already fill both cores.
* --xla_cpu_experimental_ynn_fusion_type= (YNNPACK fusion off; jaxlib >= 0.10, the versions
  tested): jaxlib 0.10.2's CPU YNNPACK fusion computes garbage when a dot operand is a
  compile-time constant, seen with zero-initialised heads of parameters initialised inside
  (or closed over by) the jit that uses them (tests/scripts/ynn_constant_dot.py reproduces it;
  test_agent.py's vmap-over-seeds test does exactly that and failed rarely with NaN).
* A compilation cache shared by the session's processes (the xdist workers): many test files
  build the same tiny agents and planners, and `_release_compiled_programs` drops the
  in-memory programs after each file, so the next file (or the other worker) reloads them from
  disk instead of compiling again (about a fifth less CPU time on the plan-ahead files). The
  directory is a fresh temporary one per session, removed at its end, so a run never reuses
  programs from an earlier tree; a JAX_COMPILATION_CACHE_DIR in the environment is used as
  given (and kept).
"""
import atexit
import importlib.metadata
import os
import shutil
import tempfile

YNN_OFF = '--xla_cpu_experimental_ynn_fusion_type='

os.environ.setdefault('MUJOCO_GL', 'disable')
_jaxlib = tuple(int(p) for p in importlib.metadata.version('jaxlib').split('.')[:2])
# XLA aborts on a flag it does not know: the emitter switch only for the jaxlib versions tested.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=1 '
                      '--xla_backend_optimization_level=0 --xla_cpu_multi_thread_eigen=false' +
                      (' --xla_cpu_use_fusion_emitters=false' if _jaxlib >= (0, 10) else ''))
if _jaxlib >= (0, 10) and 'xla_cpu_experimental_ynn_fusion_type' not in os.environ['XLA_FLAGS']:
  os.environ['XLA_FLAGS'] += ' ' + YNN_OFF


if 'JAX_COMPILATION_CACHE_DIR' not in os.environ and 'PYTEST_XDIST_WORKER' not in os.environ:
  # The controlling process (or the only one) makes the directory; xdist workers, started
  # after this runs, inherit the variables.
  _cache = tempfile.mkdtemp(prefix='spec_jax_test_xla_cache_')
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope='module')
def _release_compiled_programs():
  """Drops every compiled program after each test file. Each XLA CPU executable keeps memory
  mappings of its code; over a whole single-process session they approached the kernel's
  vm.max_map_count (65530) and compiling the next program segfaulted (session 12: ~16k maps
  after two files). Programs are rarely shared across files, so the cost is small."""
  yield
  import jax
  jax.clear_caches()
