"""Sampling time against FID for network pickles of any family: the generative-learning trilemma (quality, speed,
coverage) measured on one machine in one run. For each entry: images per second of G_ema on this machine (after a
warm-up batch; --timing-images images in batches of --batch, no gradients), and FID of --num-gen images against the
same data (the training set the pickle records, or --data), through the project's metrics code (calc_metrics.py's
number). An entry is a pickle, or for an iterative sampler (DDPM) PKL@SAMPLER:STEPS to choose its sampling:

    python benchmarks/sampling_tradeoff.py dcgan.pkl ddgan.pkl ddpm.pkl@ddpm:1000 ddpm.pkl@ddim:50 ddpm.pkl@ddim:10 \\
        --labels=DCGAN,DDGAN,DDPM-1000,DDIM-50,DDIM-10 --num-gen=1797 --out=docs/sampling-tradeoff

stdout gets one JSON line per entry as it is measured; OUT.png (rewritten after every entry) draws FID against seconds per 1000 images (both log
scale) and OUT.csv holds the numbers. Needs matplotlib (pip install -e '.[bench]')."""

import contextlib
import csv
import json
import os
import sys
import time
from typing import List, Optional, Tuple

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import calc_metrics                                             # noqa: E402 (needs the repository root on sys.path)
import dnnlib                                                   # noqa: E402
import legacy                                                   # noqa: E402
from dnnlib.cli import check_output_path, make_dirs, run_cli                                  # noqa: E402
from metrics import metric_main                                 # noqa: E402

#----------------------------------------------------------------------------

def parse_entry(entry: str) -> Tuple[str, Optional[str], Optional[int]]:
    """PKL or PKL@SAMPLER:STEPS -> (pkl, sampler, steps); UserError naming the entry otherwise."""
    if '@' not in entry:
        return entry, None, None
    pkl, spec = entry.rsplit('@', 1)
    sampler, _, steps = spec.partition(':')
    if not steps.isdigit():
        raise dnnlib.UserError(f'{entry}: expected PKL or PKL@SAMPLER:STEPS, e.g. ddpm.pkl@ddim:50')
    return pkl, sampler, int(steps)

def load_generator(entry: str, device: torch.device) -> Tuple[torch.nn.Module, dict, str]:
    """(G_ema on device with the entry's sampling as its defaults, the pickle's dict, the pickle's path)."""
    pkl, sampler, steps = parse_entry(entry)
    data = legacy.open_network(pkl)
    G = data['G_ema'].to(device).eval().requires_grad_(False)
    if sampler is not None:
        if not hasattr(G, 'check_sampling'):
            raise dnnlib.UserError(f'{entry}: the {type(G).__name__} of {pkl} is no iterative sampler (DDPM, DDGAN); give the pickle alone')
        try:
            G.check_sampling(steps, sampler)
        except ValueError as err:
            raise dnnlib.UserError(f'{entry}: {err}') from err
        G.sample_steps, G.sampler = steps, sampler
    return G, data, pkl

def images_per_sec(G: torch.nn.Module, num_images: int, batch: int, device: torch.device) -> float:
    """G's images per second: a warm-up batch, then num_images in batches (the device synchronized at the end)."""
    c = torch.zeros([batch, G.c_dim], device=device)
    if G.c_dim > 0:
        c[:, 0] = 1
    with torch.no_grad():
        G(torch.randn([batch, G.z_dim], device=device), c)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        done = 0
        while done < num_images:
            n = min(batch, num_images - done)
            G(torch.randn([n, G.z_dim], device=device), c[:n])
            done += n
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    return num_images / (time.perf_counter() - start)

def plot_tradeoff(rows: List[dict], fname: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for row in rows:
        ax.scatter(row['sec_per_1k'], row['fid'], s=30)
        ax.annotate(row['label'], (row['sec_per_1k'], row['fid']), textcoords='offset points', xytext=(5, 4), fontsize=8)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('seconds per 1000 images (log)')
    ax.set_ylabel('FID (log)')
    ax.grid(True, which='both', alpha=0.3)
    fig.tight_layout()
    fig.savefig(fname + '.tmp.png')
    plt.close(fig)
    os.replace(fname + '.tmp.png', fname)

def write_outputs(rows: List[dict], out: str) -> None:
    """OUT.csv (the rows' main columns) and OUT.png, each written under a temporary name and renamed."""
    if os.path.dirname(out):
        make_dirs(os.path.dirname(out), '--out')
    columns = ['label', 'family', 'sampler', 'sample_steps', 'images_per_sec', 'sec_per_1k', 'fid', 'num_gen', 'device']
    with open(out + '.csv.tmp', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([row[key] for key in columns] for row in rows)
    os.replace(out + '.csv.tmp', out + '.csv')
    plot_tradeoff(rows, out + '.png')

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.argument('entries', nargs=-1, required=True)
@click.option('--labels', help='Comma-separated labels, one per entry [default: the entries]')
@click.option('--num-gen', help='Generated images per FID', type=click.IntRange(min=2), default=1000, show_default=True)
@click.option('--timing-images', help='Images generated for the timing', type=click.IntRange(min=1), default=256, show_default=True)
@click.option('--batch', help='Images per forward pass in the timing', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--data', help='Dataset for the FID [default: the training set each pickle records]', metavar='[ZIP|DIR|NAME]')
@click.option('--out', help='Output path without extension: writes OUT.png and OUT.csv', required=True, metavar='PATH')
def main(entries, labels, num_gen, timing_images, batch, data, out):
    """Images per second and FID of each network pickle: JSON lines, a PNG and a CSV."""
    check_output_path(out, '--out', is_dir=False)
    labels = labels.split(',') if labels is not None else list(entries)
    if len(labels) != len(entries):
        raise dnnlib.UserError(f'--labels: {len(labels)} labels for {len(entries)} entries')
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    loaded = [load_generator(entry, device) for entry in entries] # every entry checked before anything is measured
    rows = []
    for label, (G, network_dict, pkl) in zip(labels, loaded):
        dataset_kwargs = calc_metrics.dataset_kwargs_for(pkl, network_dict, data, None)
        speed = images_per_sec(G, timing_images, batch, device)
        with contextlib.redirect_stdout(sys.stderr): # the metrics code's progress: stdout is for the JSON lines
            result = metric_main.calc_metric(metric='fid50k_full', G=G, dataset_kwargs=dataset_kwargs, device=device, num_gen=num_gen)
        row = dict(label=label, network=pkl, family=network_dict.get('family'), sampler=getattr(G, 'sampler', None), sample_steps=getattr(G, 'sample_steps', None),
                   images_per_sec=speed, sec_per_1k=1000 / speed, fid=float(result.results.fid50k_full), num_gen=num_gen, device=str(device), threads=torch.get_num_threads())
        print(json.dumps(row), flush=True)
        rows.append(row)
        write_outputs(rows, out) # after every entry: an interrupted run keeps what it measured

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
