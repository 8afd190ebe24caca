"""Does the diffusion help in miniature? Scores training runs on the built-in digits, with and without it.

Train the runs first (the demo preset on the training part of the built-in digits, same kimg for every run):

    for seed in 0 1 2; do
      python train.py --outdir=study/diffusion   --data=builtin:digits-train --cfg=demo --seed=$seed --kimg=60 --snap=5
      python train.py --outdir=study/nodiffusion --data=builtin:digits-train --cfg=demo --seed=$seed --kimg=60 --snap=5 --no-diffusion
    done
    python benchmarks/digits_study.py study/diffusion/* study/nodiffusion/* --results=study/scores.jsonl --plot=docs/digits-study.png

For every snapshot of every run: mode coverage (modes10k: the classifier of metrics/mode_coverage.py fitted on all
1797 labelled digits; classes covered, KL of the class histogram, confidence) of --num-gen generated images, and,
for the last snapshot of each run, FID of --fid-num-gen generated images against the 400 held-out digits the runs
never saw (fid50k_full with num_gen, against builtin:digits-heldout). Both are what calc_metrics.py prints with
--metrics=modes10k --data=builtin:digits / --metrics=fid50k_full --data=builtin:digits-heldout and --num-gen.
FID is the expensive part on a CPU (Inception takes about 0.5 s per image on 2 cores), hence its own, smaller count;
so few images put a floor under FID, measured too: --fid-num-gen real training digits against the held-out ones.
Scores go to stderr and, with --results, to a JSON-lines file that later calls reuse (score runs as they finish).
Then a Markdown table (mean +- standard deviation over the seeds of each variant) and one JSON line with the same
numbers go to stdout; --plot writes a figure (needs matplotlib: pip install -e '.[bench]')."""

import contextlib
import glob
import json
import os
import re
import sys

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib                                                   # noqa: E402 (needs the repository root on sys.path)
import legacy                                                   # noqa: E402
from dnnlib.cli import run_cli                                  # noqa: E402
from metrics import frechet_inception_distance                  # noqa: E402
from metrics import metric_main                                 # noqa: E402
from metrics import metric_utils                                # noqa: E402
from training import dataset                                    # noqa: E402

#----------------------------------------------------------------------------

def run_info(run_dir: str) -> dict:
    """Variant (diffusion or not), seed and snapshots {kimg: path} of a training run directory."""
    options_file = os.path.join(run_dir, 'training_options.json')
    if not os.path.isfile(options_file):
        raise dnnlib.UserError(f'{run_dir}: not a training run (no training_options.json)')
    with open(options_file) as f:
        options = json.load(f)
    snapshots = {int(re.search(r'(\d+)\.pkl$', path).group(1)): path for path in glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl'))}
    if not snapshots:
        raise dnnlib.UserError(f'{run_dir}: no network snapshots')
    return dict(run_dir=run_dir, diffusion=options.get('diffusion_kwargs') is not None, seed=options['random_seed'], snapshots=snapshots)

def score(pkl: str, num_gen: int, fid_num_gen) -> dict:
    """Mode coverage of num_gen images, and FID of fid_num_gen images unless that is None."""
    with contextlib.redirect_stdout(sys.stderr):
        G = legacy.open_network(pkl)['G_ema']
        res = G.img_resolution
        result = metric_main.calc_metric('modes10k', G=G, num_gen=num_gen, dataset_kwargs=dataset.dataset_kwargs_for_data('builtin:digits', resolution=res)).results
        scores = dict(classes=result.modes10k_classes, kl=result.modes10k_kl, confidence=result.modes10k_confidence, accuracy=result.modes10k_accuracy)
        if fid_num_gen is not None:
            scores['fid'] = metric_main.calc_metric('fid50k_full', G=G, num_gen=fid_num_gen, dataset_kwargs=dataset.dataset_kwargs_for_data('builtin:digits-heldout', resolution=res)).results.fid50k_full
    return scores

def fid_floor(num_real: int, resolution: int) -> float:
    """FID of num_real training-part digits (a seeded random subset) against the held-out ones: what a generator
    that reproduced its training data would score at this sample size."""
    moments = []
    for name, max_size in [('builtin:digits-train', num_real), ('builtin:digits-heldout', None)]:
        opts = metric_utils.MetricOptions(dataset_kwargs=dataset.dataset_kwargs_for_data(name, resolution=resolution, max_size=max_size, xflip=False, use_labels=False))
        with contextlib.redirect_stdout(sys.stderr):
            moments.append(metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=metric_utils.INCEPTION_URL,
                detector_kwargs=dict(return_features=True), capture_mean_cov=True).get_mean_cov())
    return frechet_inception_distance.fid_from_stats(*moments[0], *moments[1])

def mean_std(values: list) -> str:
    return f'{np.mean(values):.2f} +- {np.std(values):.2f}' if values else '-'

def plot(rows: list, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for variant, color in [(True, 'tab:blue'), (False, 'tab:orange')]:
        label = 'with diffusion' if variant else 'without (plain StyleGAN2)'
        for seed in sorted({row['seed'] for row in rows if row['diffusion'] == variant}):
            runs = sorted((row['kimg'], row['classes'], row['kl']) for row in rows if row['diffusion'] == variant and row['seed'] == seed)
            kimg, classes, kl = zip(*runs)
            axes[0].plot(kimg, classes, color=color, marker='o', alpha=0.7, label=label if seed == 0 else None)
            axes[1].plot(kimg, kl, color=color, marker='o', alpha=0.7, label=label if seed == 0 else None)
    axes[0].set(xlabel='kimg', ylabel='classes covered (of 10)', ylim=(0, 10.5))
    axes[1].set(xlabel='kimg', ylabel='KL(generated || real classes)')
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.argument('run_dirs', nargs=-1, required=True)
@click.option('--num-gen', help='Generated images for mode coverage', type=click.IntRange(min=10), default=2000, show_default=True)
@click.option('--fid-num-gen', help='Generated images for FID (last snapshot of each run)', type=click.IntRange(min=10), default=400, show_default=True)
@click.option('--results', 'results_path', help='JSON-lines file of scores, reused and extended', metavar='PATH')
@click.option('--plot', 'plot_path', help='Write a figure of coverage against kimg here (PNG)', metavar='PATH')
def main(run_dirs, num_gen, fid_num_gen, results_path, plot_path):
    """Mode coverage and held-out FID of digits runs with and without the diffusion."""
    runs = [run_info(run_dir) for run_dir in run_dirs]
    known = dict()
    if results_path is not None and os.path.isfile(results_path):
        with open(results_path) as f:
            known = {(row['run_dir'], row['kimg']): row for row in map(json.loads, f)}
    rows = []
    for run in runs:
        last = max(run['snapshots'])
        for kimg, pkl in sorted(run['snapshots'].items()):
            row = known.get((run['run_dir'], kimg))
            if row is None or (kimg == last and 'fid' not in row):
                row = dict(run_dir=run['run_dir'], diffusion=run['diffusion'], seed=run['seed'], kimg=kimg,
                           **score(pkl, num_gen=num_gen, fid_num_gen=fid_num_gen if kimg == last else None))
                if results_path is not None:
                    with open(results_path, 'a') as f:
                        f.write(json.dumps(row) + '\n')
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)

    table = ['| variant | kimg | runs | classes covered | KL | confidence | FID vs held-out |', '|---|---|---|---|---|---|---|']
    summary = []
    for variant in [True, False]:
        for kimg in sorted({row['kimg'] for row in rows if row['diffusion'] == variant}):
            group = [row for row in rows if row['diffusion'] == variant and row['kimg'] == kimg]
            values = {key: [row[key] for row in group if key in row] for key in ['classes', 'kl', 'confidence', 'fid']}
            table.append(f'| {"diffusion" if variant else "no diffusion"} | {kimg} | {len(group)} | ' + ' | '.join(mean_std(values[key]) for key in ['classes', 'kl', 'confidence', 'fid']) + ' |')
            summary.append(dict(diffusion=variant, kimg=kimg, runs=len(group), **{key: value for key, value in values.items() if value}))
    floor = known.get(('floor', fid_num_gen), {}).get('fid')
    if floor is None:
        floor = fid_floor(fid_num_gen, resolution=legacy.open_network(next(iter(runs[0]['snapshots'].values())))['G_ema'].img_resolution)
        if results_path is not None:
            with open(results_path, 'a') as f:
                f.write(json.dumps(dict(run_dir='floor', kimg=fid_num_gen, fid=floor)) + '\n')
    table.append(f'| {fid_num_gen} real training digits (the floor) | - | - | - | - | - | {floor:.2f} |')
    print('\n'.join(table))
    print(json.dumps(dict(num_gen=num_gen, fid_num_gen=fid_num_gen, fid_floor=floor, classifier_accuracy=rows[0]['accuracy'], groups=summary)))
    if plot_path is not None:
        plot(rows, plot_path)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
