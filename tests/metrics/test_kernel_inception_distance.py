"""Tests of metrics/kernel_inception_distance.py: the estimate equals the unbiased MMD^2 U-statistic written as
explicit loops over pairs, and it is unbiased on known distributions: near 0 for two samples of one distribution
and near the population MMD^2 (computed exactly over all pairs of support points, in float64) for two."""

import numpy as np

from metrics.kernel_inception_distance import kid_from_features

#----------------------------------------------------------------------------

def kernel(a, b):
    return (a.astype(np.float64) @ b.astype(np.float64).T / a.shape[1] + 1) ** 3

def test_kid_equals_u_statistic_over_all_pairs():
    rnd = np.random.RandomState(0)
    x = rnd.randn(9, 5).astype(np.float32) # generated
    y = (rnd.randn(9, 5) + 0.3).astype(np.float32) # real
    m = len(x)
    kxx = sum(kernel(x[i:i+1], x[j:j+1])[0, 0] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(kernel(y[i:i+1], y[j:j+1])[0, 0] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(kernel(x[i:i+1], y[j:j+1])[0, 0] for i in range(m) for j in range(m)) / (m * m)
    # One subset of the full size is a permutation of each set, which leaves the statistic unchanged.
    np.testing.assert_allclose(kid_from_features(y, x, num_subsets=1, max_subset_size=m), kxx + kyy - 2 * kxy, rtol=1e-5)

def test_kid_is_unbiased_on_known_distributions():
    # Discrete distributions (uniform over 6 points): the population MMD^2 is exact over all pairs of support
    # points, repeats included (two independent draws can coincide). Small subsets (m = 16) make the bias of
    # the plain V-statistic (about 1.1 here) some 30 standard errors large.
    rnd = np.random.RandomState(1)
    support_p = rnd.randn(6, 4).astype(np.float32)
    support_q = support_p + np.float32(0.5)
    population = kernel(support_p, support_p).mean() + kernel(support_q, support_q).mean() - 2 * kernel(support_p, support_q).mean()
    for support_gen, expected in [(support_p, 0.0), (support_q, population)]:
        estimates = np.array([kid_from_features(support_p[rnd.randint(6, size=64)], support_gen[rnd.randint(6, size=64)],
            num_subsets=5, max_subset_size=16, rnd=rnd) for _ in range(200)])
        standard_error = estimates.std() / np.sqrt(len(estimates))
        assert abs(estimates.mean() - expected) < 4 * standard_error, (estimates.mean(), expected, standard_error)
    assert population > 20 * standard_error # the two cases are told apart

#----------------------------------------------------------------------------
