"""A metric over training, one line per run: reads RUN_DIR/metric-<name>.jsonl of several runs (what train.py's
snapshot metrics and calc_metrics.py on a run's snapshots append) and draws the metric against kimg as a PNG, with
the numbers beside it as a CSV (run, kimg, value). kimg is the snapshot's, from its file name; a snapshot scored more
than once keeps its newest line. --floor draws a horizontal line, e.g. the FID between two halves of the real data
(benchmarks/fid_digits.py prints it as fid_halves).

    python benchmarks/fid_curves.py runs/00000-* runs/00001-* --metric=fid50k_full --floor=9.8 --out=docs/fid-curves

stdout gets one JSON line: the curves, the floor and the paths written. Needs matplotlib (pip install -e '.[bench]')."""

import csv
import json
import os
import re
import sys
from typing import Dict, List, Optional, Tuple

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib                                                   # noqa: E402 (needs the repository root on sys.path)
from dnnlib.cli import check_output_path, make_dirs, run_cli                                  # noqa: E402

SNAPSHOT_NAME = re.compile(r'network-snapshot-(\d+)\.pkl$')

#----------------------------------------------------------------------------

def read_curve(run_dir: str, metric: str) -> List[Tuple[int, float]]:
    """[(kimg, value)] of a run's metric-<metric>.jsonl, sorted by kimg. UserError naming the file when it is
    missing or a line is not a metric result."""
    fname = os.path.join(run_dir, f'metric-{metric}.jsonl')
    if not os.path.isfile(fname):
        raise dnnlib.UserError(f'{fname}: no such file (score the run\'s snapshots with calc_metrics.py --metrics={metric} first)')
    values: Dict[int, float] = {}
    with open(fname) as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                value = float(entry['results'][metric])
                kimg = int(SNAPSHOT_NAME.search(entry['snapshot_pkl']).group(1))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise dnnlib.UserError(f'{fname}:{line_number}: expected a {metric} result of a network-snapshot-NNNNNN.pkl') from None
            values[kimg] = value
    return sorted(values.items())

def run_label(run_dir: str) -> str:
    """The run directory's name without its number: 00003-digits32-difgan-... -> digits32-difgan-..."""
    return re.sub(r'^\d+-', '', os.path.basename(os.path.normpath(run_dir)))

def plot_curves(curves: Dict[str, List[Tuple[int, float]]], metric: str, floor: Optional[float], fname: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, points in curves.items():
        ax.plot([kimg for kimg, _ in points], [value for _, value in points], marker='o', markersize=3, label=label)
    if floor is not None:
        ax.axhline(floor, color='gray', linestyle='--', label=f'floor {floor:.2f}')
    ax.set_xlabel('kimg')
    ax.set_ylabel(metric)
    ax.set_yscale('log')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fname + '.tmp.png')
    plt.close(fig)
    os.replace(fname + '.tmp.png', fname)

#----------------------------------------------------------------------------

@click.command()
@click.argument('run_dirs', nargs=-1, required=True)
@click.option('--metric', help='Metric name (metric-NAME.jsonl)', default='fid50k_full', show_default=True)
@click.option('--labels', help='Comma-separated legend labels, one per run [default: the run directories\' names]')
@click.option('--floor', help='Horizontal reference line, e.g. FID between two halves of the real data', type=float)
@click.option('--out', help='Output path without extension: writes OUT.png and OUT.csv', required=True, metavar='PATH')
def main(run_dirs, metric, labels, floor, out):
    """Draw a metric over training for several runs: PNG and CSV."""
    check_output_path(out, '--out', is_dir=False)
    labels = labels.split(',') if labels is not None else [run_label(run_dir) for run_dir in run_dirs]
    if len(labels) != len(run_dirs):
        raise dnnlib.UserError(f'--labels: {len(labels)} labels for {len(run_dirs)} runs')
    if len(set(labels)) != len(labels):
        raise dnnlib.UserError(f'--labels: labels must differ ({",".join(labels)})')
    curves = {label: read_curve(run_dir, metric) for label, run_dir in zip(labels, run_dirs)}
    if os.path.dirname(out):
        make_dirs(os.path.dirname(out), '--out')
    with open(out + '.csv.tmp', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['run', 'kimg', metric])
        for label, points in curves.items():
            writer.writerows([label, kimg, value] for kimg, value in points)
    os.replace(out + '.csv.tmp', out + '.csv')
    plot_curves(curves, metric, floor, out + '.png')
    print(json.dumps(dict(metric=metric, floor=floor, curves=curves, png=out + '.png', csv=out + '.csv')))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_cli(main)

#----------------------------------------------------------------------------
