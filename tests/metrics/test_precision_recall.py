"""Tests of metrics/precision_recall.py: batched distances and k-NN manifolds against a brute-force numpy
evaluation of the definition, and the limiting cases (identical sets, far-apart sets)."""

import numpy as np
import pytest
import torch

import dnnlib
from metrics.precision_recall import compute_distances, pr_from_features

#----------------------------------------------------------------------------

def brute_force_pr(real, gen, k):
    def coverage(manifold, probes):
        d_mm = np.linalg.norm(manifold[:, None] - manifold[None], axis=2)
        radii = np.sort(d_mm, axis=1)[:, k] # index 0 is the point itself
        d_pm = np.linalg.norm(probes[:, None] - manifold[None], axis=2)
        return np.mean([(d_pm[i] <= radii).any() for i in range(len(probes))])
    return coverage(real, gen), coverage(gen, real)

def test_distances_in_batches_match_numpy():
    rnd = np.random.RandomState(0)
    rows, cols = rnd.randn(7, 5), rnd.randn(13, 5)
    dist = compute_distances(torch.from_numpy(rows), torch.from_numpy(cols), num_gpus=1, rank=0, col_batch_size=4)
    np.testing.assert_allclose(dist.numpy(), np.linalg.norm(rows[:, None] - cols[None], axis=2), rtol=1e-10, atol=1e-10)

def test_pr_matches_brute_force():
    rnd = np.random.RandomState(1)
    real = rnd.randn(40, 6)
    gen = rnd.randn(33, 6) * 1.3 + 0.4
    expected = brute_force_pr(real, gen, k=3)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1 # a case that exercises both outcomes
    result = pr_from_features(torch.from_numpy(real), torch.from_numpy(gen), nhood_size=3, row_batch_size=7, col_batch_size=5)
    np.testing.assert_allclose(result, expected)

def test_pr_limits():
    x = torch.from_numpy(np.random.RandomState(2).randn(20, 4))
    assert pr_from_features(x, x.clone(), nhood_size=3) == (1.0, 1.0)
    assert pr_from_features(x, x + 100, nhood_size=3) == (0.0, 0.0)
    with pytest.raises(dnnlib.UserError, match='more than 3 images'):
        pr_from_features(x, x[:3], nhood_size=3)

#----------------------------------------------------------------------------
