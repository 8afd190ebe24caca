"""Shared pytest setup: one torch thread per test process (tiny tensors run faster without thread hand-offs
on a 2-core machine) and a private dnnlib cache so tests never touch the user's cache."""

import pytest
import torch

torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path_factory.getbasetemp() / 'dnnlib-cache'))
