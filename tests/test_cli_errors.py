"""Every command-line tool against every kind of bad input that applies to it, as one table: each row must end
with exit code 2 and one line '<tool>: error: ...' naming the option or file, no traceback, and nothing written
(the rows that fill the disk halfway: no file left under a final name but complete ones, nothing half-written).
The tools run in-process through dnnlib.cli.run_cli, as `python TOOL.py` runs them."""

import contextlib
import importlib.util
import os
import pickle
import resource

import numpy as np
import pytest

import calc_metrics
import dataset_tool
import gen_video
import generate
import interpolation
import projector
import style_mixing
import train
from tests.cli_helpers import run_command
from tests.metrics.helpers import digits_kwargs, fail_downloads, save_fake_detector, tiny_generator, write_snapshot
from tests.test_style_mixing import _NoStyles
from tests.test_train import write_pngs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONG = 'x' * 300        # a file name longer than any file system allows (255 bytes)

def load_script(relpath: str):
    """A script of benchmarks/ or tools/ as a module (they are no packages)."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(relpath))[0], os.path.join(REPO_ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

TOOLS = {
    'train.py':                 lambda: train.main,
    'generate.py':              lambda: generate.main,
    'calc_metrics.py':          lambda: calc_metrics.main,
    'dataset_tool.py':          lambda: dataset_tool.main,
    'style_mixing.py':          lambda: style_mixing.main,
    'gen_video.py':             lambda: gen_video.main,
    'projector.py':             lambda: projector.main,
    'interpolation.py':         lambda: interpolation.main,
    'bench_train.py':           lambda: load_script('benchmarks/bench_train.py').main,
    'bench_features.py':        lambda: load_script('benchmarks/bench_features.py').main,
    'digits_study.py':          lambda: load_script('benchmarks/digits_study.py').main,
    'fid_curves.py':            lambda: load_script('benchmarks/fid_curves.py').main,
    'fid_digits.py':            lambda: load_script('benchmarks/fid_digits.py').main,
    'sampling_tradeoff.py':     lambda: load_script('benchmarks/sampling_tradeoff.py').main,
    'stylegan3_reference.py':   lambda: load_script('tools/stylegan3_reference.py').main,
    'insgen_reference.py':      lambda: load_script('tools/insgen_reference.py').main,
    'projected_gan_reference.py': lambda: load_script('tools/projected_gan_reference.py').main,
    'official_equivalence.py':  lambda: load_script('tools/official_equivalence.py').main,
}

#----------------------------------------------------------------------------
# The inputs, made once: {name} in a row's arguments is the path of that input. {out} is a fresh path in the
# test's own empty folder; {file} a regular file there (for paths through a file).

@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('inputs')
    p = {}
    p['net'] = write_snapshot(root / 'net.pkl', tiny_generator(img_channels=1, resolution=16), digits_kwargs(resolution=16))
    p['cond'] = write_snapshot(root / 'cond.pkl', tiny_generator(img_channels=1, c_dim=3, resolution=16), digits_kwargs(resolution=16))
    p['nostyles'] = write_snapshot(root / 'nostyles.pkl', _NoStyles(), digits_kwargs())
    data = open(p['net'], 'rb').read()
    (root / 'truncated.pkl').write_bytes(data[: len(data) // 2])
    p['truncated'] = str(root / 'truncated.pkl')
    (root / 'empty.pkl').write_bytes(b'')
    p['empty'] = str(root / 'empty.pkl')
    (root / 'corrupt.pkl').write_bytes(b'PK\x03\x04 this is neither a pickle nor a zip')
    p['corrupt'] = str(root / 'corrupt.pkl')
    (root / 'notnet.pkl').write_bytes(pickle.dumps(dict(weights=[1, 2, 3])))
    p['notnet'] = str(root / 'notnet.pkl')
    np.savez(root / 'badw.npz', w=np.zeros([1, 3, 5], dtype=np.float32))
    p['badw'] = str(root / 'badw.npz')
    p['missing'] = str(root / 'missing')
    p['gray16'] = write_pngs(root / 'gray16', [16, 16], channels=1)
    folder_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=p['gray16'], resolution=16, use_labels=False, max_size=None, xflip=False)
    p['faces'] = write_snapshot(root / 'faces.pkl', tiny_generator(img_channels=1, resolution=16), folder_kwargs)
    p['rgb32'] = write_pngs(root / 'rgb32', [32, 32])
    p['target'] = os.path.join(p['gray16'], 'img000.png')
    p['vgg'] = save_fake_detector(root / 'vgg16.pkl')
    p['emptydir'] = str(root / 'emptydir')
    os.mkdir(p['emptydir'])
    return p

def listing(root) -> dict:
    """{relative path: (size, mtime_ns)} of every file and folder under root."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            result[os.path.relpath(path, root)] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
    return result

@contextlib.contextmanager
def disk_full_after(num_bytes: int):
    """Writes past num_bytes into any one file fail with EFBIG (RLIMIT_FSIZE; Python ignores SIGXFSZ): a disk that
    fills up in the middle of a file, for every writer of the process."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (num_bytes, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)

#----------------------------------------------------------------------------
# The table: (tool, arguments, words the one line must hold). Rows whose id ends in '-diskfull' run with a disk
# that fills after 100 bytes of a file.

PROC = '/proc/forbidden'   # cannot be created, not even by root
CASES = [
    # Output directories and files that cannot be written.
    ('train.py',            ['--outdir', PROC, '--dry-run'],                                            f'--outdir={PROC}: cannot write in /proc'),
    ('train.py',            ['--outdir', '{file}/runs'],                                                '--outdir={file}/runs: {file} is a file'),
    ('generate.py',         ['--network', '{net}', '--seeds=0', '--outdir', PROC],                      f'--outdir={PROC}: cannot write in /proc'),
    ('generate.py',         ['--network', '{net}', '--seeds=0', '--outdir', '{file}/images'],           '--outdir={file}/images: {file} is a file'),
    ('generate.py',         ['--network', '{net}', '--seeds=0', '--outdir', '{file}'],                  '--outdir={file}: exists and is not a directory'),
    ('generate.py',         ['--network', '{net}', '--seeds=0', '--outdir', '{out}/' + LONG],           'cannot create the directory (File name too long)'),
    ('generate.py',         ['--network', '{net}', '--projected-w', '{badw}', '--outdir', PROC],       '--projected-w={badw}: its w has shape [1, 3, 5]'),
    ('style_mixing.py',     ['--network', '{net}', '--rows=0', '--cols=1', '--outdir', PROC],           f'--outdir={PROC}: cannot write in /proc'),
    ('interpolation.py',    ['--network', '{cond}', '--outdir', '{file}/strip'],                        '--outdir={file}/strip: {file} is a file'),
    ('projector.py',        ['--network', '{net}', '--target', '{target}', '--vgg', '{vgg}', '--outdir', PROC], f'--outdir={PROC}: cannot write in /proc'),
    ('gen_video.py',        ['--network', '{net}', '--seeds=0-1', '--output', PROC + '.mp4'],           f'--output={PROC}.mp4: cannot write in /proc'),
    ('gen_video.py',        ['--network', '{net}', '--seeds=0-1', '--output', '{file}/video.mp4'],      '--output={file}/video.mp4: expected a file in an existing directory'),
    ('gen_video.py',        ['--network', '{net}', '--seeds=0-1', '--output', '{out}'],                 '--output={out}: expected an .mp4'),
    ('dataset_tool.py',     ['--source', '{gray16}', '--dest', PROC + '.zip'],                          f'--dest={PROC}.zip'),
    ('dataset_tool.py',     ['--source', '{gray16}', '--dest', '{file}/data.zip'],                      '--dest={file}/data.zip'),
    ('fid_curves.py',       ['{emptydir}', '--out', PROC + '/curves'],                                  f'--out={PROC}/curves'),
    ('sampling_tradeoff.py', ['{net}', '--out', '{file}/tradeoff'],                                     '--out={file}/tradeoff'),
    # Input files: missing, empty, truncated, corrupt, not a network, a network of the wrong family.
    ('generate.py',         ['--network', '{missing}', '--seeds=0', '--outdir', '{out}'],               '{missing}'),
    ('generate.py',         ['--network', '{empty}', '--seeds=0', '--outdir', '{out}'],                 '{empty}'),
    ('generate.py',         ['--network', '{truncated}', '--seeds=0', '--outdir', '{out}'],             '{truncated}'),
    ('generate.py',         ['--network', '{corrupt}', '--seeds=0', '--outdir', '{out}'],               '{corrupt}'),
    ('generate.py',         ['--network', '{notnet}', '--seeds=0', '--outdir', '{out}'],                '{notnet}'),
    ('calc_metrics.py',     ['--network', '{truncated}'],                                               '{truncated}'),
    ('calc_metrics.py',     ['--network', '{net}', '--data', '{missing}'],                              '{missing}'),
    ('style_mixing.py',     ['--network', '{nostyles}', '--rows=0', '--cols=1', '--outdir', '{out}'],   'has no mapping network with per-layer styles'),
    ('style_mixing.py',     ['--network', '{empty}', '--rows=0', '--cols=1', '--outdir', '{out}'],      '{empty}'),
    ('gen_video.py',        ['--network', '{nostyles}', '--seeds=0-1', '--output', '{out}.mp4'],        '--network={nostyles}'),
    ('gen_video.py',        ['--network', '{notnet}', '--seeds=0-1', '--output', '{out}.mp4'],          '{notnet}'),
    ('projector.py',        ['--network', '{nostyles}', '--target', '{target}', '--outdir', '{out}'],   '--network={nostyles}'),
    ('projector.py',        ['--network', '{net}', '--target', '{missing}', '--outdir', '{out}'],       '--target={missing}'),
    ('projector.py',        ['--network', '{net}', '--target', '{empty}', '--outdir', '{out}'],         '--target={empty}'),
    ('interpolation.py',    ['--network', '{net}', '--outdir', '{out}'],                                '--network={net}: the network is unconditional'),
    ('interpolation.py',    ['--network', '{corrupt}', '--outdir', '{out}'],                            '{corrupt}'),
    ('dataset_tool.py',     ['--source', '{missing}', '--dest', '{out}.zip'],                           '{missing}'),
    ('dataset_tool.py',     ['--source', '{empty}', '--dest', '{out}.zip'],                             '{empty}'),
    ('dataset_tool.py',     ['--source', '{emptydir}', '--dest', '{out}.zip'],                          '{emptydir}'),
    ('train.py',            ['--outdir', '{out}', '--data', '{missing}'],                               '{missing}'),
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--resume', '{truncated}'],     '{truncated}'),
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--resume', '{notnet}'],        '{notnet}'),
    ('fid_digits.py',       ['--network', '{faces}'],                                                   '--network: {faces} was trained on training.dataset.ImageFolderDataset'),
    ('sampling_tradeoff.py', ['{net}@ddim:10', '--out', '{out}'],                                       '{net}@ddim:10: the Generator of {net} is no iterative sampler'),
    ('digits_study.py',     ['{emptydir}'],                                                             '{emptydir}: not a training run'),
    ('digits_study.py',     [],                                                                         'expected training run directories, or --data'),
    ('digits_study.py',     ['--data', '{missing}'],                                                    '--data needs --workdir'),
    ('digits_study.py',     ['--data', '{missing}', '--workdir', '{out}'],                              '--data={missing}: cannot read it as a labelled zip'),
    ('digits_study.py',     ['--data', '{gray16}', '--workdir', '{out}', '--presets', 'nosuch'],        '--presets: unknown preset "nosuch"'),
    ('fid_curves.py',       ['{emptydir}', '--out', '{out}'],                                           'metric-fid50k_full.jsonl: no such file'),
    ('stylegan3_reference.py', ['--stylegan3', '{missing}'],                                            '--stylegan3'),
    ('insgen_reference.py', ['--repo', '{emptydir}'],                                                   '--repo'),
    ('projected_gan_reference.py', ['--repo', '{missing}'],                                             '--repo'),
    ('official_equivalence.py', ['--official', '{missing}'],                                            '--official'),
    # Number lists, ranges and values out of range; unknown presets and metrics.
    ('generate.py',         ['--network', '{net}', '--seeds=zero', '--outdir', '{out}'],               "'--seeds'"),
    ('generate.py',         ['--network', '{net}', '--seeds=3-1', '--outdir', '{out}'],                "'--seeds'"),
    ('generate.py',         ['--network', '{net}', '--seeds=4294967296', '--outdir', '{out}'],         "'--seeds'"),
    ('generate.py',         ['--network', '{cond}', '--seeds=0', '--class=3', '--outdir', '{out}'],    '--class=3: out of range'),
    ('generate.py',         ['--network', '{net}', '--seeds=0', '--translate=0.1', '--outdir', '{out}'], "'--translate'"),
    ('style_mixing.py',     ['--network', '{net}', '--rows=0,,1', '--cols=1', '--outdir', '{out}'],    "'--rows'"),
    ('style_mixing.py',     ['--network', '{net}', '--rows=0', '--cols=1', '--styles=99', '--outdir', '{out}'], '--styles: layer 99 does not exist'),
    ('gen_video.py',        ['--network', '{net}', '--seeds=0-2', '--grid=2x1', '--output', '{out}.mp4'], '--seeds: 3 seeds do not fill a 2x1 grid'),
    ('gen_video.py',        ['--network', '{net}', '--seeds=0-1', '--grid=2by1', '--output', '{out}.mp4'], "'--grid'"),
    ('gen_video.py',        ['--network', '{net}', '--seeds=0-1', '--w-frames=0', '--output', '{out}.mp4'], "'--w-frames'"),
    ('interpolation.py',    ['--network', '{cond}', '--classes=1,1', '--outdir', '{out}'],             '--classes=1,1'),
    ('projector.py',        ['--network', '{net}', '--target', '{target}', '--num-steps=0', '--outdir', '{out}'], "'--num-steps'"),
    ('dataset_tool.py',     ['--source', '{gray16}', '--dest', '{out}.zip', '--resolution=16x'],       "'--resolution'"),
    ('dataset_tool.py',     ['--source', '{gray16}', '--dest', '{out}.zip', '--max-images=0'],         "'--max-images'"),
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--cfg', 'nonsense'],          '--cfg'),
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--kimg', '0'],                '--kimg'),
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--target', '1.5'],            '--target'),
    ('calc_metrics.py',     ['--network', '{net}', '--metrics', 'fid50k_ful'],                         'fid50k_ful'),
    ('calc_metrics.py',     ['--network', '{net}', '--num-gen', '1'],                                  "'--num-gen'"),
    ('bench_train.py',      ['--res=12'],                                                               '--res=12'),
    ('bench_train.py',      ['--cfg=nonsense'],                                                         "'--cfg'"),
    ('bench_features.py',   ['--path=fast'],                                                            '--path needs --features-out'),
    ('fid_digits.py',       ['--num-gen=10'],                                                           '--num-gen: only used with --network'),
    # Datasets that do not fit: no labels where labels are needed, the wrong resolution or channels for a network.
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--cond', 'true'],             '--cond=True requires dataset.json labels'),
    ('train.py',            ['--outdir', '{out}', '--data', '{rgb32}', '--resume', '{net}'],           'the networks are for 16x16 images, but the training set is 32x32'),
    ('train.py',            ['--outdir', '{out}', '--data', '{gray16}', '--resume', '{cond}', '--cond', 'true'], '--cond=True requires dataset.json labels'),
    ('calc_metrics.py',     ['--network', '{cond}', '--data', '{gray16}'],                             'requires dataset.json labels in {gray16}'),
    ('dataset_tool.py',     ['--source', '{gray16}', '--dest', '{out}.zip', '--labels'],               '--labels'),
    # The disk fills up in the middle of a file.
    ('generate.py',         ['--network', '{net}', '--seeds=0-3', '--outdir', '{out}'],                'seed0000.png: File too large', 'diskfull'),
    ('style_mixing.py',     ['--network', '{net}', '--rows=0', '--cols=1', '--outdir', '{out}'],       'File too large', 'diskfull'),
    ('interpolation.py',    ['--network', '{cond}', '--outdir', '{out}', '--steps=3'],                 'File too large', 'diskfull'),
    ('dataset_tool.py',     ['--source', '{gray16}', '--dest', '{out}.zip'],                           '{out}.zip: File too large', 'diskfull'),
]

def case_id(case) -> str:
    tool, args = case[0], case[1]
    return f'{tool[:-3]}-{"-".join(args)}'.replace('/', '_')[:80] + ('-diskfull' if len(case) > 3 else '')

@pytest.mark.parametrize('case', CASES, ids=[f'{i:02d}-{case_id(case)}' for i, case in enumerate(CASES)])
def test_bad_input(case, inputs, tmp_path, capsys, monkeypatch):
    tool, args, words = case[:3]
    work = tmp_path / 'work'
    work.mkdir()
    names = dict(inputs, out=str(work / 'out'), file=str(tmp_path / 'regular-file'))
    (tmp_path / 'regular-file').write_text('a regular file')
    args = [arg.format(**names) for arg in args]
    words = words.format(**names)
    monkeypatch.chdir(work)
    fail_downloads(monkeypatch)   # a row that would reach a detector download fails at once instead of retrying
    before = listing(os.path.dirname(inputs['net']))
    before_data = listing(os.path.join(REPO_ROOT, 'tests', 'data'))   # where the tools/ scripts write
    with disk_full_after(100) if len(case) > 3 else contextlib.nullcontext():
        code, out, err = run_command(capsys, TOOLS[tool](), tool, *args)
    assert code == 2, (args, out, err)
    assert len(err) == 1 and err[0].startswith(f'{tool}: error: ') and words in err[0], (args, err)
    assert not any('Traceback' in line for line in out + err)
    assert listing(os.path.dirname(inputs['net'])) == before
    assert listing(os.path.join(REPO_ROOT, 'tests', 'data')) == before_data
    files = {path: size for path, (size, _mtime) in listing(work).items() if not os.path.isdir(work / path)}
    assert files == {}, files
    if len(case) <= 3:
        assert os.listdir(work) == [], os.listdir(work)
    assert sorted(os.listdir(tmp_path)) == ['regular-file', 'work']

#----------------------------------------------------------------------------
