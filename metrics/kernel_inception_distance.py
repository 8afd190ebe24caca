"""Kernel Inception Distance (KID) from "Demystifying MMD GANs" (Binkowski et al. 2018): the squared maximum
mean discrepancy between Inception features of real and generated images with the polynomial kernel
k(x, y) = (x.y / d + 1)^3, estimated without bias and averaged over random subsets. Matches the original
TensorFlow implementation."""

from typing import Optional

import numpy as np

from . import metric_utils

#----------------------------------------------------------------------------

def kid_from_features(real_features: np.ndarray, gen_features: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
    rnd: Optional[np.random.RandomState] = None) -> float:
    """Mean over num_subsets of the unbiased MMD^2 estimate between m generated and m real features drawn without
    replacement, m = min(len(real), len(gen), max_subset_size). Within each set the diagonal (a sample with
    itself) is left out, which is what makes the estimate unbiased."""
    rnd = np.random.RandomState(0) if rnd is None else rnd
    n = real_features.shape[1]
    m = min(real_features.shape[0], gen_features.shape[0], max_subset_size)
    assert m >= 2, 'KID needs at least 2 real and 2 generated images'
    t = 0
    for _subset_idx in range(num_subsets):
        x = gen_features[rnd.choice(gen_features.shape[0], m, replace=False)]
        y = real_features[rnd.choice(real_features.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)

#----------------------------------------------------------------------------

def compute_kid(opts: metric_utils.MetricOptions, max_real: Optional[int], num_gen: int, num_subsets: int, max_subset_size: int) -> float:
    """KID of num_gen generated images against at most max_real real images (None = all); NaN on ranks > 0."""
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(return_features=True) # pool3 features, [N, 2048]

    real_features = metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_all=True, max_items=max_real).get_all()
    gen_features = metric_utils.compute_feature_stats_for_generator(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_all=True, max_items=num_gen).get_all()
    if opts.rank != 0:
        return float('nan')
    return kid_from_features(real_features, gen_features, num_subsets=num_subsets, max_subset_size=max_subset_size)

#----------------------------------------------------------------------------
