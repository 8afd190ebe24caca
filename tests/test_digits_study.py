"""Tests of benchmarks/digits_study.py's own parts: the split of a labelled zip into training and held-out images
(order, labels, bytes, reuse, too few images) and its tables' means against numpy."""

import json
import os
import zipfile

import numpy as np
import pytest

import dnnlib
from tests.test_cli_errors import load_script

study = load_script('benchmarks/digits_study.py')

#----------------------------------------------------------------------------

def labelled_zip(path, num_images: int) -> list:
    """A zip of num_images files with dataset.json labels (not images: the split copies bytes); returns the labels."""
    labels = [[f'{i // 5:05d}/img{i:08d}.png', i % 10] for i in range(num_images)]
    with zipfile.ZipFile(path, 'w') as z:
        for fname, label in labels:
            z.writestr(fname, f'image {fname} of class {label}')
        z.writestr('dataset.json', json.dumps(dict(labels=labels)))
    return labels

def read_zip(path) -> tuple:
    with zipfile.ZipFile(path) as z:
        labels = json.loads(z.read('dataset.json'))['labels']
        return labels, {name: z.read(name) for name in z.namelist() if name != 'dataset.json'}

def test_split_keeps_order_labels_and_bytes(tmp_path):
    labels = labelled_zip(tmp_path / 'digits.zip', 20)
    paths = study.split_data(str(tmp_path / 'digits.zip'), str(tmp_path / 'work'), num_train=7, num_heldout=9)
    for name, expected in [('train', labels[:7]), ('heldout', labels[7:16])]:
        got_labels, files = read_zip(paths[name])
        assert got_labels == expected
        assert files == {fname: f'image {fname} of class {label}'.encode() for fname, label in expected}
    assert paths['classifier'] == paths['heldout']
    # A second call reuses the split as it is.
    stamp = os.stat(paths['train']).st_mtime_ns
    assert study.split_data(str(tmp_path / 'digits.zip'), str(tmp_path / 'work'), num_train=7, num_heldout=9) == paths
    assert os.stat(paths['train']).st_mtime_ns == stamp

def test_split_needs_enough_labelled_images(tmp_path):
    labelled_zip(tmp_path / 'digits.zip', 10)
    with pytest.raises(dnnlib.UserError, match='10 labelled images; expected at least --num-train \\+ --num-heldout = 11'):
        study.split_data(str(tmp_path / 'digits.zip'), str(tmp_path / 'work'), num_train=5, num_heldout=6)
    assert not os.path.exists(tmp_path / 'work')
    with zipfile.ZipFile(tmp_path / 'unlabelled.zip', 'w') as z:
        z.writestr('img0.png', b'')
    with pytest.raises(dnnlib.UserError, match='expected class labels'):
        study.split_data(str(tmp_path / 'unlabelled.zip'), str(tmp_path / 'work'), num_train=1, num_heldout=1)

def test_tables_mean_and_last_snapshot():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        for kimg in [0, 10, 20]:
            rows.append(dict(run_dir=f'run{seed}', group='demo-diffusion', diffusion=True, cond=False, seed=seed, kimg=kimg,
                             classes=int(rng.integers(1, 11)), kl=float(rng.random()), confidence=float(rng.random()),
                             fid=float(rng.random() * 100) if kimg == 20 else None, minutes=12.5 if kimg == 20 else None))
    runs_table, means_table, summary, last_rows = study.tables(rows, floor=1.5, fid_num_gen=40)
    assert sorted(row['kimg'] for row in last_rows) == [20, 20, 20]
    at20 = [row for row in rows if row['kimg'] == 20]
    group = next(entry for entry in summary if entry['kimg'] == 20)
    assert group['runs'] == 3 and group['classes'] == [row['classes'] for row in at20]
    line = next(line for line in means_table.splitlines() if line.startswith('| demo-diffusion | diffusion | 20 |'))
    fids = [row['fid'] for row in at20]
    assert f'{np.mean(fids):.2f} +- {np.std(fids):.2f}' in line
    assert len(runs_table.splitlines()) == 2 + 3 and '| 12.5 |' in runs_table

#----------------------------------------------------------------------------
