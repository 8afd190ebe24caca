"""Does the diffusion help in miniature? Trains and scores digit runs with and without it, end to end.

On labelled real digits (a zip in dataset_tool.py's layout with class labels, e.g. MNIST), from the data path:

    python benchmarks/digits_study.py --data=mnist-tune-7000.zip --workdir=study-mnist \\
        --presets=demo,digits --seeds=0,1,2 --cond-seeds=0 --plot=docs/digits-study-mnist.png

splits the data (in the zip's order) into --num-train images to train on and the next --num-heldout to score
against (WORKDIR/train.zip, WORKDIR/heldout.zip), trains every preset with and without the diffusion for every seed
(and conditional runs, --cond=true for --cond-kimg, for --cond-seeds), --jobs runs at a time with the CPU cores shared among them (or OMP_NUM_THREADS each),
into WORKDIR/<preset>-<variant>/, then scores them. Runs already finished are kept; an unfinished one continues
(--resume=auto); --no-train scores the finished runs only (while another call trains the rest). On the built-in digits, score runs trained beforehand (each group of runs in a directory of its own):

    for seed in 0 1 2; do
      python train.py --outdir=study/diffusion   --data=builtin:digits-train --cfg=demo --seed=$seed --kimg=60 --snap=5
      python train.py --outdir=study/nodiffusion --data=builtin:digits-train --cfg=demo --seed=$seed --kimg=60 --snap=5 --no-diffusion
    done
    python benchmarks/digits_study.py study/diffusion/* study/nodiffusion/* --results=study/scores.jsonl --plot=docs/digits-study.png

For every snapshot of every run: mode coverage (modes10k: the classifier of metrics/mode_coverage.py fitted on the
labelled held-out images, or on all 1797 built-in digits; classes covered, KL of the class histogram, confidence,
and for a conditional run the accuracy with which G(z, c) draws class c) of --num-gen generated images, and, for
the last snapshot of each unconditional run, FID of --fid-num-gen generated images against the held-out images the runs never
saw (fid50k_full with num_gen). Both are what calc_metrics.py prints with --metrics=modes10k / fid50k_full and
--num-gen. FID is the expensive part on a CPU, hence its own count; finite samples put a floor under FID, measured
too: at most --fid-num-gen real training images against the held-out ones.
Scores go to stderr and to a JSON-lines file (--results; WORKDIR/scores.jsonl with --data) that later calls reuse.
Then Markdown tables (every run's last snapshot; mean +- standard deviation over the seeds of each group and
snapshot) and one JSON line with the same numbers go to stdout; --plot writes a figure (needs matplotlib:
pip install -e '.[bench]')."""

import contextlib
import glob
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib                                                   # noqa: E402 (needs the repository root on sys.path)
import legacy                                                   # noqa: E402
from dnnlib.cli import parse_range                              # noqa: E402
from dnnlib.cli import run_cli                                  # noqa: E402
from metrics import frechet_inception_distance                  # noqa: E402
from metrics import metric_main                                 # noqa: E402
from metrics import metric_utils                                # noqa: E402
from training import dataset                                    # noqa: E402
from training import presets as presets_lib                     # noqa: E402

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILTIN_REFERENCES = dict(classifier='builtin:digits', heldout='builtin:digits-heldout', train='builtin:digits-train')

#----------------------------------------------------------------------------
# Data and training.

def split_data(data: str, workdir: str, num_train: int, num_heldout: int) -> dict:
    """WORKDIR/train.zip (the first num_train labelled images of the zip, in its dataset.json order) and
    WORKDIR/heldout.zip (the next num_heldout); written once, reused after."""
    paths = dict(train=os.path.join(workdir, 'train.zip'), heldout=os.path.join(workdir, 'heldout.zip'))
    if all(os.path.isfile(path) for path in paths.values()):
        return dict(paths, classifier=paths['heldout'])
    try:
        with zipfile.ZipFile(data) as source:
            labels = json.loads(source.read('dataset.json')).get('labels') if 'dataset.json' in source.namelist() else None
            if not labels:
                raise dnnlib.UserError(f'--data={data}: expected class labels (dataset.json "labels", as dataset_tool.py writes them)')
            if len(labels) < num_train + num_heldout:
                raise dnnlib.UserError(f'--data={data}: {len(labels)} labelled images; expected at least --num-train + --num-heldout = {num_train + num_heldout}')
            os.makedirs(workdir, exist_ok=True)
            for name, part in [('train', labels[:num_train]), ('heldout', labels[num_train:num_train + num_heldout])]:
                with zipfile.ZipFile(paths[name] + '.tmp', 'w') as dest:
                    for fname, _label in part:
                        dest.writestr(fname, source.read(fname))
                    dest.writestr('dataset.json', json.dumps(dict(labels=part)))
                os.replace(paths[name] + '.tmp', paths[name])
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise dnnlib.UserError(f'--data={data}: cannot read it as a labelled zip ({err})') from err
    return dict(paths, classifier=paths['heldout'])

def run_dirs_in(outdir: str) -> list:
    return sorted(path for path in glob.glob(os.path.join(outdir, '[0-9]' * 5 + '-*')) if os.path.isdir(path))

def snapshots_of(run_dir: str) -> dict:
    """{kimg: path} of the network snapshots of a run directory."""
    return {int(re.search(r'(\d+)\.pkl$', path).group(1)): path for path in glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl'))}

def is_finished(run_dir: str) -> bool:
    with open(os.path.join(run_dir, 'training_options.json')) as f:
        total_kimg = json.load(f)['total_kimg']
    snapshots = snapshots_of(run_dir)
    return bool(snapshots) and max(snapshots) >= int(total_kimg)

def train_all(jobs: list, train_zip: str, num_parallel: int) -> None:
    """Runs train.py for each job dict(outdir, args) whose run is not finished, num_parallel at a time, each with
    OMP_NUM_THREADS threads when that is set, else an equal share of the CPU cores; a run's output goes to
    OUTDIR.log. A failed run stops the study."""
    threads = os.environ.get('OMP_NUM_THREADS') or str(max(1, (os.cpu_count() or 1) // num_parallel))
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    todo = [job for job in jobs if not any(is_finished(run_dir) for run_dir in run_dirs_in(job['outdir']))]
    running = []
    while todo or running:
        while todo and len(running) < num_parallel:
            job = todo.pop(0)
            os.makedirs(job['outdir'], exist_ok=True)
            cmd = [sys.executable, os.path.join(REPO_DIR, 'train.py'), f'--outdir={job["outdir"]}', f'--data={train_zip}', '--resume=auto', *job['args']]
            print(f'training: {" ".join(cmd[1:])}', file=sys.stderr)
            log = open(job['outdir'] + '.log', 'a')
            running.append((job, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_DIR), log))
        time.sleep(5)
        for entry in list(running):
            job, process, log = entry
            if process.poll() is not None:
                log.close()
                running.remove(entry)
                if process.returncode != 0:
                    for _job, other, _log in running:
                        other.terminate()
                    raise dnnlib.UserError(f'{job["outdir"]}: train.py exited with {process.returncode}; see {job["outdir"]}.log')

#----------------------------------------------------------------------------
# Scoring.

def run_info(run_dir: str) -> dict:
    """Group (the directory holding the run), variant (diffusion or not), conditional or not, seed, wall-clock
    minutes and snapshots {kimg: path} of a training run directory."""
    options_file = os.path.join(run_dir, 'training_options.json')
    if not os.path.isfile(options_file):
        raise dnnlib.UserError(f'{run_dir}: not a training run (no training_options.json)')
    with open(options_file) as f:
        options = json.load(f)
    snapshots = snapshots_of(run_dir)
    if not snapshots:
        raise dnnlib.UserError(f'{run_dir}: no network snapshots')
    minutes = None
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
        with open(os.path.join(run_dir, 'stats.jsonl')) as f:
            minutes = json.loads(f.read().splitlines()[-1])['Timing/total_sec']['mean'] / 60
    diffusion_kwargs = options.get('diffusion_kwargs') # also set, with diffuse=False, for --no-diffusion --aug
    diffusion = diffusion_kwargs is not None and diffusion_kwargs.get('diffuse', True)
    return dict(run_dir=run_dir, group=os.path.basename(os.path.dirname(os.path.abspath(run_dir))), diffusion=diffusion,
                cond=bool(options['training_set_kwargs'].get('use_labels')), seed=options['random_seed'], minutes=minutes, snapshots=snapshots)

def score(pkl: str, references: dict, num_gen: int, fid_num_gen) -> dict:
    """Mode coverage of num_gen images, and FID of fid_num_gen images unless that is None."""
    with contextlib.redirect_stdout(sys.stderr):
        G = legacy.open_network(pkl)['G_ema']
        res = G.img_resolution
        classifier_data = dataset.dataset_kwargs_for_data(references['classifier'], resolution=res, use_labels=G.c_dim > 0) # a conditional G draws its labels from it
        result = metric_main.calc_metric('modes10k', G=G, num_gen=num_gen, dataset_kwargs=classifier_data).results
        scores = dict(classes=result.modes10k_classes, kl=result.modes10k_kl, confidence=result.modes10k_confidence, accuracy=result.modes10k_accuracy)
        if 'modes10k_cond_accuracy' in result:
            scores['cond_accuracy'] = result.modes10k_cond_accuracy
        if fid_num_gen is not None:
            scores['fid'] = metric_main.calc_metric('fid50k_full', G=G, num_gen=fid_num_gen, dataset_kwargs=dataset.dataset_kwargs_for_data(references['heldout'], resolution=res)).results.fid50k_full
    return scores

def fid_floor(references: dict, num_real: int, resolution: int) -> float:
    """FID of num_real training images (a seeded random subset) against the held-out ones: what a generator that
    reproduced its training data would score at this sample size."""
    moments = []
    for name, max_size in [(references['train'], num_real), (references['heldout'], None)]:
        # The options fid50k_full uses, so that the held-out images' statistics come from the same cache entry.
        opts = metric_utils.MetricOptions(dataset_kwargs=dataset.dataset_kwargs_for_data(name, resolution=resolution, max_size=max_size, xflip=False))
        with contextlib.redirect_stdout(sys.stderr):
            moments.append(metric_utils.compute_feature_stats_for_dataset(opts=opts, detector_url=metric_utils.INCEPTION_URL,
                detector_kwargs=dict(return_features=True), capture_mean_cov=True).get_mean_cov())
    return frechet_inception_distance.fid_from_stats(*moments[0], *moments[1])

def mean_std(values: list) -> str:
    return f'{np.mean(values):.2f} +- {np.std(values):.2f}' if values else '-'

def variant_name(row: dict) -> str:
    return ('conditional, ' if row['cond'] else '') + ('diffusion' if row['diffusion'] else 'no diffusion')

def plot(rows: list, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = sorted({row['group'] for row in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for index, group in enumerate(groups):
        color = plt.get_cmap('tab10')(index)
        for number, seed in enumerate(sorted({row['seed'] for row in rows if row['group'] == group})):
            curve = sorted((row['kimg'], row['classes'], row['kl']) for row in rows if row['group'] == group and row['seed'] == seed)
            kimg, classes, kl = zip(*curve)
            axes[0].plot(kimg, classes, color=color, marker='o', markersize=3, alpha=0.7, label=group if number == 0 else None)
            axes[1].plot(kimg, kl, color=color, marker='o', markersize=3, alpha=0.7, label=group if number == 0 else None)
    axes[0].set(xlabel='kimg', ylabel='classes covered (of 10)', ylim=(0, 10.5))
    axes[1].set(xlabel='kimg', ylabel='KL(generated || real classes)')
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)

def tables(rows: list, floor: float, fid_num_gen: int) -> tuple:
    """Markdown: the last snapshot of every run, and mean +- std per group and snapshot; and the summary dicts."""
    keys = ['classes', 'kl', 'confidence', 'cond_accuracy', 'fid']
    last = {}
    for row in rows:
        if row['kimg'] >= last.get(row['run_dir'], row)['kimg']:
            last[row['run_dir']] = row
    fmt = lambda value, digits=2: '-' if value is None else f'{value:.{digits}f}'
    runs = ['| group | variant | seed | kimg | classes covered | KL | cond. accuracy | FID vs held-out | minutes |', '|---|---|---|---|---|---|---|---|---|']
    for row in sorted(last.values(), key=lambda row: (row['group'], row['seed'])):
        runs.append(f'| {row["group"]} | {variant_name(row)} | {row["seed"]} | {row["kimg"]} | {row["classes"]} | {fmt(row["kl"])} | '
                    f'{fmt(row.get("cond_accuracy"))} | {fmt(row.get("fid"), 1)} | {fmt(row.get("minutes"), 1)} |')
    means = ['| group | variant | kimg | runs | classes covered | KL | confidence | cond. accuracy | FID vs held-out |', '|---|---|---|---|---|---|---|---|---|']
    summary = []
    for group in sorted({row['group'] for row in rows}):
        for kimg in sorted({row['kimg'] for row in rows if row['group'] == group}):
            members = [row for row in rows if row['group'] == group and row['kimg'] == kimg]
            values = {key: [row[key] for row in members if row.get(key) is not None] for key in keys}
            means.append(f'| {group} | {variant_name(members[0])} | {kimg} | {len(members)} | ' + ' | '.join(mean_std(values[key]) for key in keys) + ' |')
            summary.append(dict(group=group, diffusion=members[0]['diffusion'], cond=members[0]['cond'], kimg=kimg, runs=len(members),
                                **{key: value for key, value in values.items() if value}))
    means.append(f'| at most {fid_num_gen} real training images (the floor) | - | - | - | - | - | - | - | {floor:.2f} |')
    return '\n'.join(runs), '\n'.join(means), summary, list(last.values())

#----------------------------------------------------------------------------

@click.command(context_settings=dict(max_content_width=120))
@click.argument('run_dirs', nargs=-1)
@click.option('--data', help='Labelled digits (zip): split, train, then score [default: score RUN_DIRS on the built-in digits]', metavar='ZIP')
@click.option('--workdir', help='With --data: where the split, runs and scores go', metavar='DIR')
@click.option('--presets', help='With --data: presets to train (configs/)', metavar='LIST', default='demo', show_default=True)
@click.option('--seeds', help='With --data: seeds of every preset and variant', metavar='LIST', default='0-2', show_default=True)
@click.option('--cond-seeds', help='With --data: seeds of conditional runs (--cond=true) of every preset and variant [default: none]', metavar='LIST')
@click.option('--cond-kimg', help='With --data: length of the conditional runs, kimg (60: where the StyleGAN2 demo learned the built-in digits\' labels)', type=click.IntRange(min=1), default=60, show_default=True)
@click.option('--num-train', help='With --data: images to train on', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--num-heldout', help='With --data: held-out images to score against', type=click.IntRange(min=10), default=2000, show_default=True)
@click.option('--jobs', help='With --data: training runs at a time', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--train/--no-train', help='With --data: train the missing runs, or only score the finished ones', default=True, show_default=True)
@click.option('--snap-kimg', help='With --data: snapshot (and coverage) interval in kimg', type=click.IntRange(min=1), default=10, show_default=True)
@click.option('--num-gen', help='Generated images for mode coverage', type=click.IntRange(min=10), default=2000, show_default=True)
@click.option('--fid-num-gen', help='Generated images for FID (last snapshot of each unconditional run) [default: --num-heldout with --data, else 400]', type=click.IntRange(min=10))
@click.option('--results', 'results_path', help='JSON-lines file of scores, reused and extended [default: WORKDIR/scores.jsonl with --data]', metavar='PATH')
@click.option('--plot', 'plot_path', help='Write a figure of coverage against kimg here (PNG)', metavar='PATH')
def main(run_dirs, data, workdir, presets, seeds, cond_seeds, cond_kimg, num_train, num_heldout, jobs, train, snap_kimg, num_gen, fid_num_gen, results_path, plot_path):
    """Mode coverage and held-out FID of digit runs with and without the diffusion."""
    if data is None:
        if not run_dirs:
            raise dnnlib.UserError('expected training run directories, or --data to train them')
        references = BUILTIN_REFERENCES
        fid_num_gen = fid_num_gen or 400
    else:
        if workdir is None:
            raise dnnlib.UserError('--data needs --workdir, the directory for the split, the runs and the scores')
        preset_list = [name.strip() for name in presets.split(',') if name.strip()]
        for name in preset_list:
            if name not in presets_lib.preset_names():
                raise dnnlib.UserError(f'--presets: unknown preset "{name}"; expected names from configs/: {", ".join(presets_lib.preset_names())}')
        seed_list = parse_range(seeds)
        cond_list = parse_range(cond_seeds) if cond_seeds else []
        references = split_data(data, workdir, num_train, num_heldout)
        fid_num_gen = fid_num_gen or num_heldout
        results_path = results_path or os.path.join(workdir, 'scores.jsonl')
        jobs_list = []
        for name in preset_list:
            for cond, seed_values in [(False, seed_list), (True, cond_list)]:
                for diffusion in [True, False]:
                    group = f'{name}-{"cond-" if cond else ""}{"diffusion" if diffusion else "nodiffusion"}'
                    for seed in seed_values:
                        args = [f'--cfg={name}', f'--seed={seed}', f'--tick={snap_kimg}', '--snap=1', '--diffusion' if diffusion else '--no-diffusion']
                        jobs_list.append(dict(group=group, outdir=os.path.join(workdir, group, f'seed{seed}'), args=args + (['--cond=true', f'--kimg={cond_kimg}'] if cond else [])))
        if train:
            train_all(jobs_list, references['train'], num_parallel=jobs)
        job_groups = {run_dir: job['group'] for job in jobs_list for run_dir in run_dirs_in(job['outdir']) if is_finished(run_dir)}
        if not job_groups:
            raise dnnlib.UserError(f'{workdir}: no finished training runs to score yet')
        run_dirs = list(job_groups)
    runs = [run_info(run_dir) for run_dir in run_dirs]
    if data is not None:
        for run in runs: # group = preset and variant, not the per-seed output directory
            run['group'] = job_groups[run['run_dir']]

    known = dict()
    if results_path is not None and os.path.isfile(results_path):
        with open(results_path) as f:
            known = {(row['run_dir'], row['kimg']): row for row in map(json.loads, f)}
    rows = []
    for run in runs:
        last = max(run['snapshots'])
        for kimg, pkl in sorted(run['snapshots'].items()):
            row = known.get((run['run_dir'], kimg))
            wants_fid = kimg == last and not run['cond'] # conditional runs are there for their label accuracy
            if row is None or (wants_fid and 'fid' not in row):
                row = dict(run_dir=run['run_dir'], kimg=kimg, **score(pkl, references, num_gen=num_gen, fid_num_gen=fid_num_gen if wants_fid else None))
                if results_path is not None:
                    with open(results_path, 'a') as f:
                        f.write(json.dumps(row) + '\n')
            row = dict(row, **{key: run[key] for key in ['group', 'diffusion', 'cond', 'seed']}, minutes=run['minutes'] if kimg == last else None)
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)

    floor_key = ('floor', f'{references["train"]}:{fid_num_gen}')
    floor = known.get(floor_key, {}).get('fid')
    if floor is None:
        floor = fid_floor(references, fid_num_gen, resolution=legacy.open_network(next(iter(runs[0]['snapshots'].values())))['G_ema'].img_resolution)
        if results_path is not None:
            with open(results_path, 'a') as f:
                f.write(json.dumps(dict(run_dir=floor_key[0], kimg=floor_key[1], fid=floor)) + '\n')
    runs_table, means_table, summary, last_rows = tables(rows, floor, fid_num_gen)
    print(runs_table + '\n\n' + means_table)
    print(json.dumps(dict(num_gen=num_gen, fid_num_gen=fid_num_gen, fid_floor=floor, classifier_accuracy=rows[0]['accuracy'],
                          runs=[{key: row.get(key) for key in ['group', 'seed', 'kimg', 'classes', 'kl', 'cond_accuracy', 'fid', 'minutes']} for row in last_rows],
                          groups=summary)))
    if plot_path is not None:
        plot(rows, plot_path)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
