"""Registry of the metrics by name, one call to compute a metric, and reporting to metric-<name>.jsonl.

Recommended: fid50k_full, kid50k_full, pr50k3_full, ppl2_wend, is50k; modes10k (mode coverage) for labelled
digit-like data. '_full' compares against the whole dataset (every real image once); fid10k_full and fid2k_full are cheaper FID variants for quick checks.
Legacy names of the StyleGAN/StyleGAN2 papers: fid50k, kid50k, pr50k3 (at most 50k real images) and
ppl_zfull, ppl_wfull, ppl_zend, ppl_wend (cropped, batch 2). MetricOptions.num_gen overrides the number of
generated images (paths for PPL) of any metric; the result keeps the metric's name and records num_gen."""

import json
import os
import time
from typing import Callable, List, Optional

import torch

import dnnlib
from . import metric_utils
from . import frechet_inception_distance
from . import kernel_inception_distance
from . import precision_recall
from . import perceptual_path_length
from . import inception_score
from . import mode_coverage

#----------------------------------------------------------------------------

_metric_dict = dict() # name -> fn(opts) -> dict of results

def register_metric(fn: Callable) -> Callable:
    assert callable(fn)
    _metric_dict[fn.__name__] = fn
    return fn

def is_valid_metric(metric: str) -> bool:
    return metric in _metric_dict

def list_valid_metrics() -> List[str]:
    return list(_metric_dict.keys())

def parse_metric_list(s: str) -> List[str]:
    """'fid50k_full,kid50k_full' -> ['fid50k_full', 'kid50k_full']; '' or 'none' -> []. Unknown names raise
    UserError listing the valid ones (for command-line options such as --metrics)."""
    names = [name.strip() for name in str(s).split(',') if name.strip()]
    if names == ['none']:
        return []
    invalid = [name for name in names if not is_valid_metric(name)]
    if invalid:
        raise dnnlib.UserError(f'--metrics: unknown metric "{invalid[0]}"; expected a comma-separated list of {", ".join(list_valid_metrics())} (or none)')
    return names

#----------------------------------------------------------------------------

def calc_metric(metric: str, G: torch.nn.Module, dataset_kwargs: dict, num_gpus: int = 1, rank: int = 0, device: Optional[torch.device] = None,
    cache: bool = True, num_gen: Optional[int] = None, progress: Optional[metric_utils.ProgressMonitor] = None) -> dnnlib.EasyDict:
    """Compute one metric of generator G against the dataset; every rank of a process group must call it.
    Returns EasyDict(results=EasyDict(name -> value), metric, total_time, total_time_str, num_gpus, num_gen).
    Raises dnnlib.UserError for a missing detector (offline) and other problems with the input."""
    if not is_valid_metric(metric):
        raise dnnlib.UserError(f'unknown metric "{metric}"; expected one of {", ".join(list_valid_metrics())}')
    opts = metric_utils.MetricOptions(G=G, dataset_kwargs=dataset_kwargs, num_gpus=num_gpus, rank=rank, device=device,
        progress=progress, cache=cache, num_gen=num_gen)

    start_time = time.time()
    results = _metric_dict[metric](opts)
    total_time = time.time() - start_time

    # Only rank 0 holds the values; share them so that every rank returns the same dict.
    for key, value in list(results.items()):
        if opts.num_gpus > 1:
            value = torch.as_tensor(value, dtype=torch.float64, device=opts.device)
            torch.distributed.broadcast(tensor=value, src=0)
            value = float(value.cpu())
        results[key] = value

    return dnnlib.EasyDict(
        results         = dnnlib.EasyDict(results),
        metric          = metric,
        total_time      = total_time,
        total_time_str  = dnnlib.util.format_time(total_time),
        num_gpus        = num_gpus,
        num_gen         = num_gen,
    )

#----------------------------------------------------------------------------

def report_metric(result_dict: dict, run_dir: Optional[str] = None, snapshot_pkl: Optional[str] = None) -> None:
    """Print the result as one JSON line and append it to run_dir/metric-<name>.jsonl (when run_dir exists);
    snapshot_pkl is recorded relative to run_dir."""
    metric = result_dict['metric']
    assert is_valid_metric(metric)
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    jsonl_line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    print(jsonl_line)
    if run_dir is not None and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, f'metric-{metric}.jsonl'), 'at') as f:
            f.write(jsonl_line + '\n')

#----------------------------------------------------------------------------
# Recommended metrics.

@register_metric
def fid50k_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    fid = frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=opts.gen_count(50000))
    return dict(fid50k_full=fid)

@register_metric
def fid10k_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    fid = frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=opts.gen_count(10000))
    return dict(fid10k_full=fid)

@register_metric
def fid2k_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    fid = frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=opts.gen_count(2000))
    return dict(fid2k_full=fid)

@register_metric
def kid50k_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    kid = kernel_inception_distance.compute_kid(opts, max_real=1000000, num_gen=opts.gen_count(50000), num_subsets=100, max_subset_size=1000)
    return dict(kid50k_full=kid)

@register_metric
def pr50k3_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    precision, recall = precision_recall.compute_pr(opts, max_real=200000, num_gen=opts.gen_count(50000), nhood_size=3, row_batch_size=10000, col_batch_size=10000)
    return dict(pr50k3_full_precision=precision, pr50k3_full_recall=recall)

@register_metric
def ppl2_wend(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=opts.gen_count(50000), epsilon=1e-4, space='w', sampling='end', crop=False, batch_size=2)
    return dict(ppl2_wend=ppl)

@register_metric
def is50k(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    mean, std = inception_score.compute_is(opts, num_gen=opts.gen_count(50000), num_splits=10)
    return dict(is50k_mean=mean, is50k_std=std)

@register_metric
def modes10k(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    result = mode_coverage.compute_mode_coverage(opts, num_gen=opts.gen_count(10000))
    return {f'modes10k_{key}': value for key, value in result.items()}

#----------------------------------------------------------------------------
# Legacy metrics.

@register_metric
def fid50k(opts):
    opts.dataset_kwargs.update(max_size=None)
    fid = frechet_inception_distance.compute_fid(opts, max_real=50000, num_gen=opts.gen_count(50000))
    return dict(fid50k=fid)

@register_metric
def kid50k(opts):
    opts.dataset_kwargs.update(max_size=None)
    kid = kernel_inception_distance.compute_kid(opts, max_real=50000, num_gen=opts.gen_count(50000), num_subsets=100, max_subset_size=1000)
    return dict(kid50k=kid)

@register_metric
def pr50k3(opts):
    opts.dataset_kwargs.update(max_size=None)
    precision, recall = precision_recall.compute_pr(opts, max_real=50000, num_gen=opts.gen_count(50000), nhood_size=3, row_batch_size=10000, col_batch_size=10000)
    return dict(pr50k3_precision=precision, pr50k3_recall=recall)

@register_metric
def ppl_zfull(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=opts.gen_count(50000), epsilon=1e-4, space='z', sampling='full', crop=True, batch_size=2)
    return dict(ppl_zfull=ppl)

@register_metric
def ppl_wfull(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=opts.gen_count(50000), epsilon=1e-4, space='w', sampling='full', crop=True, batch_size=2)
    return dict(ppl_wfull=ppl)

@register_metric
def ppl_zend(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=opts.gen_count(50000), epsilon=1e-4, space='z', sampling='end', crop=True, batch_size=2)
    return dict(ppl_zend=ppl)

@register_metric
def ppl_wend(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=opts.gen_count(50000), epsilon=1e-4, space='w', sampling='end', crop=True, batch_size=2)
    return dict(ppl_wend=ppl)

#----------------------------------------------------------------------------
