"""Compute quality metrics (FID, KID, precision/recall, IS, PPL) of a network pickle against a dataset.

Results are printed as JSON lines and, for a local pickle, appended to metric-<name>.jsonl next to it.
A metric that cannot be computed (e.g. its detector cannot be downloaded) is reported and the others go on;
the exit code is then 2.

Examples:
    python calc_metrics.py --network=training-runs/00000-digits/network-snapshot-000060.pkl --metrics=fid50k_full --num-gen=2000
    python calc_metrics.py --network=ffhq.pkl --metrics=fid50k_full,kid50k_full,pr50k3_full --data=~/datasets/ffhq.zip --mirror=1"""

import copy
import json
import os
import sys
import tempfile
from typing import List, Optional

import click
import torch

import dnnlib
import legacy
from dnnlib.cli import run_cli
from dnnlib.malloc import tune_malloc
from metrics import metric_main
from metrics import metric_utils
from training import dataset as dataset_module

#----------------------------------------------------------------------------

def subprocess_fn(rank: int, args: dnnlib.EasyDict, temp_dir: str) -> List[str]:
    """Compute every metric in one process of the group; rank 0 reports. Returns (and on rank 0 writes to
    temp_dir/failed.json) the names of the metrics that failed with a UserError."""
    tune_malloc() # spawned ranks start here, not in run_cli
    if args.num_gpus > 1:
        init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        torch.distributed.init_process_group(backend='nccl', init_method=f'file://{init_file}', rank=rank, world_size=args.num_gpus)
    device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')

    failed = []
    progress = metric_utils.ProgressMonitor(verbose=args.verbose)
    for metric in args.metrics:
        if rank == 0 and args.verbose:
            print(f'Calculating {metric}...', flush=True)
        try:
            result = metric_main.calc_metric(metric=metric, G=args.G, dataset_kwargs=args.dataset_kwargs, num_gpus=args.num_gpus,
                rank=rank, device=device, num_gen=args.num_gen, progress=progress)
        except dnnlib.UserError as err:
            failed.append(metric)
            if rank == 0:
                print(f'{metric} failed: {err}', file=sys.stderr, flush=True)
            continue
        if rank == 0:
            metric_main.report_metric(result, run_dir=args.run_dir, snapshot_pkl=args.network_pkl)

    if rank == 0:
        with open(os.path.join(temp_dir, 'failed.json'), 'wt') as f:
            json.dump(failed, f)
    return failed

#----------------------------------------------------------------------------

def dataset_kwargs_for(network_pkl: str, network_dict: dict, data: Optional[str], mirror: Optional[bool]) -> dnnlib.EasyDict:
    """Dataset options: --data, else the training set recorded in the pickle (the built-in digits for our demo
    runs); at the generator's resolution, with labels iff it is conditional. Checked by building the dataset."""
    G = network_dict['G_ema']
    if data is not None:
        kwargs = dataset_module.dataset_kwargs_for_data(data)
    elif isinstance(network_dict.get('training_set_kwargs'), dict) and 'class_name' in network_dict['training_set_kwargs']:
        kwargs = dnnlib.EasyDict(copy.deepcopy(network_dict['training_set_kwargs']))
    else:
        raise dnnlib.UserError(f'--data: {network_pkl} does not record its training set; specify the dataset with --data')
    kwargs.update(resolution=G.img_resolution, use_labels=(G.c_dim != 0))
    if mirror is not None:
        kwargs.xflip = mirror

    try:
        dataset = dnnlib.util.construct_class_by_name(**kwargs)
    except dnnlib.UserError as err:
        if data is not None:
            raise
        raise dnnlib.UserError(f'the training set recorded in {network_pkl} is not usable here ({err}); specify the dataset with --data') from err
    if dataset.num_channels != G.img_channels:
        raise dnnlib.UserError(f'--data: {dataset.name} has {dataset.num_channels}-channel images, but the generator makes {G.img_channels}-channel images')
    if dataset.label_dim != G.c_dim:
        raise dnnlib.UserError(f'--data: {dataset.name} has {dataset.label_dim}-dimensional labels, but the generator takes {G.c_dim}')
    return kwargs

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.option('--network', 'network_pkl', help='Network pickle filename or URL', metavar='PATH', required=True)
@click.option('--metrics', help='Quality metrics, comma-separated: ' + ', '.join(metric_main.list_valid_metrics()), metavar='LIST', default='fid50k_full', show_default=True)
@click.option('--data', help='Dataset to evaluate against: folder, zip or builtin:digits, builtin:digits-heldout  [default: the training set recorded in the pickle]', metavar='[ZIP|DIR|NAME]')
@click.option('--mirror', help='Add x-flipped copies of the real images  [default: as in training]', type=bool, metavar='BOOL')
@click.option('--gpus', help='Number of GPUs (processes) to use', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--num-gen', help='Generated images (PPL: paths) per metric instead of the metric\'s own count, e.g. for quick runs; real images stay the full dataset (capped by the metric)', type=click.IntRange(min=2), metavar='INT')
@click.option('--verbose', help='Print dataset options and progress', is_flag=True)
@click.option('--safe', help='Load the .safetensors + .json beside the snapshot instead of unpickling (runs no code from the files)', is_flag=True)
def main(network_pkl: str, metrics: str, data: Optional[str], mirror: Optional[bool], gpus: int, num_gen: Optional[int], verbose: bool, safe: bool):
    """Calculate quality metrics for a network pickle."""
    metric_names = metric_main.parse_metric_list(metrics)
    if not metric_names:
        raise dnnlib.UserError('--metrics: no metric given')
    if gpus > 1 and gpus > torch.cuda.device_count():
        raise dnnlib.UserError(f'--gpus={gpus}: only {torch.cuda.device_count()} CUDA device(s) available')

    if verbose:
        print(f'Loading network from "{network_pkl}"...')
    network_dict = legacy.open_network(network_pkl, safe=safe)
    args = dnnlib.EasyDict(metrics=metric_names, num_gpus=gpus, num_gen=num_gen, verbose=verbose, network_pkl=network_pkl)
    args.G = network_dict['G_ema']
    args.dataset_kwargs = dataset_kwargs_for(network_pkl, network_dict, data, mirror)
    args.run_dir = os.path.dirname(os.path.abspath(network_pkl)) if os.path.isfile(network_pkl) else None
    if verbose:
        print('Dataset options:')
        print(json.dumps(args.dataset_kwargs, indent=2))

    with tempfile.TemporaryDirectory() as temp_dir:
        if gpus == 1:
            failed = subprocess_fn(rank=0, args=args, temp_dir=temp_dir)
        else:
            torch.multiprocessing.set_start_method('spawn', force=True)
            torch.multiprocessing.spawn(fn=subprocess_fn, args=(args, temp_dir), nprocs=gpus)
            with open(os.path.join(temp_dir, 'failed.json'), 'rt') as f:
                failed = json.load(f)
    if failed:
        raise dnnlib.UserError(f'{len(failed)} of {len(metric_names)} metrics failed: {", ".join(failed)}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
