"""Precision and recall from "Improved Precision and Recall Metric for Assessing Generative Models"
(Kynkaanniemi et al. 2019): each set of VGG16 features spans a manifold, the union of balls around its points
with radius the distance to the k-th nearest neighbour; precision is the fraction of generated samples inside
the real manifold, recall the fraction of real samples inside the generated one. Matches the original
TensorFlow implementation."""

from typing import Optional

import torch

import dnnlib
from . import metric_utils

#----------------------------------------------------------------------------

def compute_distances(row_features: torch.Tensor, col_features: torch.Tensor, num_gpus: int, rank: int, col_batch_size: int) -> torch.Tensor:
    """Euclidean distances [rows, cols]; the column batches are shared among the ranks and gathered on all."""
    num_cols = col_features.shape[0]
    num_batches = ((num_cols - 1) // col_batch_size // num_gpus + 1) * num_gpus
    col_features = torch.nn.functional.pad(col_features, [0, 0, 0, -num_cols % num_batches]) # equal chunks for all_gather
    dist_batches = []
    for col_batch in col_features.chunk(num_batches)[rank :: num_gpus]:
        dist = torch.cdist(row_features.unsqueeze(0), col_batch.unsqueeze(0))[0]
        if num_gpus > 1:
            gathered = [torch.empty_like(dist) for _ in range(num_gpus)]
            torch.distributed.all_gather(gathered, dist)
            dist_batches += gathered
        else:
            dist_batches.append(dist)
    # Batch j of rank r is chunk j * num_gpus + r, so the gathered list is already in column order.
    return torch.cat(dist_batches, dim=1)[:, :num_cols]

def pr_from_features(real_features: torch.Tensor, gen_features: torch.Tensor, nhood_size: int = 3, row_batch_size: int = 10000,
    col_batch_size: int = 10000, num_gpus: int = 1, rank: int = 0) -> tuple:
    """(precision, recall) of two feature sets [N, D]. A probe is inside a manifold if its distance to some
    manifold point is at most that point's distance to its nhood_size-th nearest neighbour (itself excluded)."""
    results = []
    for manifold, probes in [(real_features, gen_features), (gen_features, real_features)]:
        if manifold.shape[0] <= nhood_size:
            raise dnnlib.UserError(f'precision/recall with k={nhood_size} needs more than {nhood_size} images in each set, got {manifold.shape[0]}')
        kth = []
        for manifold_batch in manifold.split(row_batch_size):
            dist = compute_distances(row_features=manifold_batch, col_features=manifold, num_gpus=num_gpus, rank=rank, col_batch_size=col_batch_size)
            kth.append(dist.to(torch.float32).kthvalue(nhood_size + 1, dim=1).values.to(dist.dtype)) # +1: the distance 0 to itself
        kth = torch.cat(kth)
        pred = []
        for probes_batch in probes.split(row_batch_size):
            dist = compute_distances(row_features=probes_batch, col_features=manifold, num_gpus=num_gpus, rank=rank, col_batch_size=col_batch_size)
            pred.append((dist <= kth.unsqueeze(0)).any(dim=1))
        results.append(float(torch.cat(pred).to(torch.float32).mean()))
    return tuple(results)

#----------------------------------------------------------------------------

def compute_pr(opts: metric_utils.MetricOptions, max_real: Optional[int], num_gen: int, nhood_size: int, row_batch_size: int, col_batch_size: int) -> tuple:
    """(precision, recall) of num_gen generated images against at most max_real real images (None = all).
    Features are compared in float16 on CUDA, as the official code does, and in float32 on the CPU."""
    detector_url = metric_utils.VGG16_URL
    detector_kwargs = dict(return_features=True) # fc features, [N, 4096]
    dtype = torch.float16 if opts.device.type == 'cuda' else torch.float32

    real_features = metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_all=True, max_items=max_real).get_all_torch().to(dtype).to(opts.device)
    gen_features = metric_utils.compute_feature_stats_for_generator(opts=opts, detector_url=detector_url,
        detector_kwargs=detector_kwargs, capture_all=True, max_items=num_gen).get_all_torch().to(dtype).to(opts.device)
    precision, recall = pr_from_features(real_features, gen_features, nhood_size=nhood_size, row_batch_size=row_batch_size,
        col_batch_size=col_batch_size, num_gpus=opts.num_gpus, rank=opts.rank)
    if opts.rank != 0:
        return float('nan'), float('nan')
    return precision, recall

#----------------------------------------------------------------------------
