"""Inception Score (IS) from "Improved Techniques for Training GANs" (Salimans et al. 2016): exp of the mean
KL divergence between the Inception class posterior of each generated image and the marginal over the split,
averaged over 10 splits. Matches the original TensorFlow implementation."""

import numpy as np

import dnnlib
from . import metric_utils

#----------------------------------------------------------------------------

def is_from_probs(gen_probs: np.ndarray, num_splits: int = 10) -> tuple:
    """(mean, std) over num_splits consecutive splits of exp(E_x KL(p(y|x) || p(y))), probs [N, classes]."""
    num_gen = gen_probs.shape[0]
    scores = []
    for i in range(num_splits):
        part = gen_probs[i * num_gen // num_splits : (i + 1) * num_gen // num_splits].astype(np.float64)
        # 0 * log 0 = 0: classes with zero probability contribute nothing.
        log_ratio = np.log(np.where(part > 0, part, 1)) - np.log(np.mean(part, axis=0, keepdims=True).clip(min=1e-300))
        kl = np.mean(np.sum(part * log_ratio, axis=1))
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))

#----------------------------------------------------------------------------

def compute_is(opts: metric_utils.MetricOptions, num_gen: int, num_splits: int) -> tuple:
    """(mean, std) IS of num_gen generated images; NaN on ranks > 0. Needs NVIDIA's detector (logits)."""
    if num_gen < num_splits:
        raise dnnlib.UserError(f'IS with {num_splits} splits needs at least {num_splits} generated images, got {num_gen}')
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(no_output_bias=True) # Softmax without the output bias, as the original implementation.

    gen_probs = metric_utils.compute_feature_stats_for_generator(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_all=True, max_items=num_gen).get_all()
    if opts.rank != 0:
        return float('nan'), float('nan')
    return is_from_probs(gen_probs, num_splits=num_splits)

#----------------------------------------------------------------------------
