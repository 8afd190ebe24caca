"""Tests of metrics/inception_score.py and the PPL helpers of metrics/perceptual_path_length.py against
closed forms and independent formulas (scipy's rel_entr, explicit sorting)."""

import numpy as np
import scipy.special
import torch

from metrics.inception_score import is_from_probs
from metrics.perceptual_path_length import ppl_from_distances, slerp

#----------------------------------------------------------------------------

def test_is_closed_forms():
    # Identical posteriors carry no information: IS = 1. Confident, balanced posteriors over C classes: IS = C.
    uniform = np.full([50, 7], 1 / 7)
    np.testing.assert_allclose(is_from_probs(uniform, num_splits=10), (1.0, 0.0), atol=1e-12)
    onehot = np.eye(5)[np.arange(100) % 5]
    np.testing.assert_allclose(is_from_probs(onehot, num_splits=10), (5.0, 0.0), atol=1e-12)

def test_is_matches_rel_entr():
    probs = np.random.RandomState(0).dirichlet(np.full(6, 0.5), size=103)
    scores = []
    for i in range(10):
        part = probs[i * 103 // 10 : (i + 1) * 103 // 10] # split sizes 10 and 11
        scores.append(np.exp(scipy.special.rel_entr(part, part.mean(axis=0, keepdims=True)).sum(axis=1).mean()))
    np.testing.assert_allclose(is_from_probs(probs, num_splits=10), (np.mean(scores), np.std(scores)), rtol=1e-10)

#----------------------------------------------------------------------------

def test_ppl_drops_outer_percentiles():
    dist = np.random.RandomState(1).exponential(size=1000)
    dist[:5] = 1e6 # outliers
    kept = np.sort(dist)[9:991] # 'lower' 1st percentile = 10th smallest, 'higher' 99th = 991st smallest
    np.testing.assert_allclose(ppl_from_distances(dist), kept.mean(), rtol=1e-12)

def test_slerp_endpoints_and_norm():
    a = torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 2.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[0.0], [1 / 3], [1.0]], dtype=torch.float64)
    out = slerp(a.repeat(3, 1), b.repeat(3, 1), t)
    expected = torch.tensor([[1.0, 0.0, 0.0], [np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected)

#----------------------------------------------------------------------------
