"""Frechet Inception Distance (FID) from "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
Nash Equilibrium" (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the Inception pool3
features of real and generated images. Matches the original TensorFlow implementation."""

import warnings

import numpy as np
import scipy.linalg

from . import metric_utils

#----------------------------------------------------------------------------

def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)). The matrix square root of a product of
    two covariances is real in theory; numerical noise can add a tiny imaginary part, which is dropped.
    With fewer images than features (2048) the covariances are singular; scipy's warning about it is silenced,
    since FID from so few images is a rough (biased upward) number anyway."""
    m = np.square(mu1 - mu2).sum()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', category=scipy.linalg.LinAlgWarning)
        s = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))
    return float(np.real(m + np.trace(sigma1 + sigma2 - s * 2)))

#----------------------------------------------------------------------------

def compute_fid(opts: metric_utils.MetricOptions, max_real: int, num_gen: int) -> float:
    """FID of num_gen generated images against at most max_real real images (None = all); NaN on ranks > 0."""
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(return_features=True) # pool3 features, [N, 2048]

    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_mean_cov=True, max_items=max_real).get_mean_cov()
    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_generator(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_mean_cov=True, max_items=num_gen).get_mean_cov()
    if opts.rank != 0:
        return float('nan')
    return fid_from_stats(mu_gen, sigma_gen, mu_real, sigma_real)

#----------------------------------------------------------------------------
