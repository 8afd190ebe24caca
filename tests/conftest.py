"""Shared pytest setup: one torch thread per test process (tiny tensors run faster without thread hand-offs
on a 2-core machine, and the same in subprocesses) and a private dnnlib cache so tests never touch the user's cache."""

import os

import pytest
import torch

# Subprocesses started by tests (fresh-process pickle checks) inherit the same thread count, so float
# reductions happen in the same order on both sides and results can be compared bit for bit.
os.environ['OMP_NUM_THREADS'] = '1'
torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path_factory.getbasetemp() / 'dnnlib-cache'))
