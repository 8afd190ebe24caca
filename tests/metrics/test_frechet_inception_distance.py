"""Tests of metrics/frechet_inception_distance.py: FID against closed forms (identical sets, a mean shift,
a scaled covariance) and against the trace formula evaluated with eigendecompositions instead of sqrtm."""

import numpy as np

from metrics.frechet_inception_distance import fid_from_stats
from metrics.metric_utils import FeatureStats

#----------------------------------------------------------------------------

def feature_set(n=400, d=12, seed=0):
    rnd = np.random.RandomState(seed)
    return (rnd.randn(n, d) @ rnd.randn(d, d) + rnd.randn(d)).astype(np.float32)

def mean_cov(x):
    stats = FeatureStats(capture_mean_cov=True)
    stats.append(x)
    return stats.get_mean_cov()

#----------------------------------------------------------------------------

def test_fid_of_a_set_with_itself_is_zero():
    mu, cov = mean_cov(feature_set())
    assert abs(fid_from_stats(mu, cov, mu, cov)) < 1e-8 * np.trace(cov)

def test_fid_of_a_shifted_copy_is_the_squared_shift():
    x = feature_set()
    shift = np.random.RandomState(1).randn(x.shape[1]).astype(np.float32)
    mu1, cov1 = mean_cov(x)
    mu2, cov2 = mean_cov(x + shift)
    expected = np.square(shift.astype(np.float64)).sum()
    np.testing.assert_allclose(fid_from_stats(mu1, cov1, mu2, cov2), expected, rtol=1e-4)

def test_fid_of_a_scaled_copy_matches_closed_form():
    # Scaling by s about the mean: covariances C and s^2 C commute, so tr(C + s^2 C - 2 s C) = (1 - s)^2 tr(C).
    x = feature_set()
    s = 1.7
    mu1, cov1 = mean_cov(x)
    mu2, cov2 = mean_cov((x - x.mean(axis=0)) * s + x.mean(axis=0))
    np.testing.assert_allclose(fid_from_stats(mu1, cov1, mu2, cov2), (1 - s) ** 2 * np.trace(cov1), rtol=1e-4)

def test_fid_matches_trace_formula_for_general_covariances():
    # tr((C1 C2)^(1/2)) = tr((C1^(1/2) C2 C1^(1/2))^(1/2)) for symmetric positive definite C1, C2; evaluated with eigh.
    mu1, cov1 = mean_cov(feature_set(seed=2))
    mu2, cov2 = mean_cov(feature_set(seed=3))
    def sqrt_psd(a):
        w, v = np.linalg.eigh(a)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    r = sqrt_psd(cov1)
    expected = np.square(mu1 - mu2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(sqrt_psd(r @ cov2 @ r))
    np.testing.assert_allclose(fid_from_stats(mu1, cov1, mu2, cov2), expected, rtol=1e-6)

#----------------------------------------------------------------------------
