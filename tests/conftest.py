"""Shared pytest setup: one torch thread per test process unless OMP_NUM_THREADS says otherwise (tiny tensors run
faster without thread hand-offs on a 2-core machine, and the same in subprocesses), a private dnnlib cache so tests
never touch the user's cache, and the `slow` marker's rule: every slow test says why it is slow."""

import os

import pytest
import torch

# Subprocesses started by tests (fresh-process pickle checks) inherit the same thread count, so float
# reductions happen in the same order on both sides and results can be compared bit for bit. An explicit
# OMP_NUM_THREADS is kept: the suite must pass with 1 and with 2 threads.
os.environ.setdefault('OMP_NUM_THREADS', '1')
torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))

def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker in item.iter_markers('slow'):
            if len(marker.args) != 1 or not isinstance(marker.args[0], str) or not marker.args[0].strip():
                raise pytest.UsageError(f'{item.nodeid}: @pytest.mark.slow needs one reason string, e.g. @pytest.mark.slow("SIGKILL resume: two trainings")')

@pytest.fixture(autouse=True)
def _torch_settings_kept():
    """A test that changes torch's thread count or deterministic mode in this process (a tool's main called in
    process) would change every later test's rounding, and break the comparisons with subprocesses, which start
    with OMP_NUM_THREADS threads: each test must leave them as it found them."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    left = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    assert left == (threads, deterministic), f'the test left torch with threads, deterministic = {left}; it found {(threads, deterministic)}'

@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path_factory.getbasetemp() / 'dnnlib-cache'))
