"""Tests of dataset_tool.py: every source format written here in its real on-disk layout, converted and read back
through training.dataset.ImageFolderDataset (exact pixels and labels), crops against an independent NumPy
Lanczos resampler, undecodable images, and every user error (one line, exit code 2, nothing left at --dest)."""

import collections
import gzip
import io
import json
import os
import pickle
import sys
import tarfile
import zipfile

import numpy as np
import PIL.Image
import pytest

import dataset_tool
from tests.cli_helpers import run_command
from training.dataset import DigitsDataset, ImageFolderDataset


#----------------------------------------------------------------------------

def run_tool(capsys, *args):
    """Run dataset_tool.py's command line in-process; return (exit code, stderr lines other than the progress bar)."""
    code, _out, err = run_command(capsys, dataset_tool.main, 'dataset_tool.py', *args)
    return code, err

def read_back(path, use_labels=True):
    """(HWC images, raw labels or None) of a data set, as train.py would see it."""
    dataset = ImageFolderDataset(path, use_labels=use_labels)
    images = [dataset[i][0].transpose(1, 2, 0) for i in range(len(dataset))]
    labels = [dataset.get_details(i).raw_label.tolist() for i in range(len(dataset))] if use_labels else None
    return images, labels

def random_image(h, w, channels=3, seed=0):
    shape = [h, w] + ([channels] if channels != 1 else [])
    return np.random.RandomState(seed).randint(0, 256, size=shape).astype(np.uint8)

def hwc(image):
    return image[:, :, np.newaxis] if image.ndim == 2 else image

def png_bytes(image):
    buf = io.BytesIO()
    PIL.Image.fromarray(image).save(buf, format='png')
    return buf.getvalue()

def write_images(folder, named_images):
    for name, image in named_images.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(image if isinstance(image, bytes) else png_bytes(image))
    return str(folder)

def lanczos_reference(image, out_w, out_h):
    """Pillow's LANCZOS resize re-derived: separable windowed sinc (a=3) stretched by the downscale factor,
    normalized weights, horizontal pass then vertical, each rounded and clipped to uint8."""
    def weights(n_in, n_out):
        scale = n_in / n_out
        stretch = max(scale, 1.0)
        t = ((np.arange(n_in) + 0.5)[np.newaxis, :] - (np.arange(n_out) + 0.5)[:, np.newaxis] * scale) / stretch
        w = np.sinc(t) * np.sinc(t / 3) * (np.abs(t) < 3)
        return w / w.sum(axis=1, keepdims=True)
    x = np.einsum('ow,hwc->hoc', weights(image.shape[1], out_w), image.astype(np.float64))
    x = np.clip(np.floor(x + 0.5), 0, 255)
    x = np.einsum('oh,hwc->owc', weights(image.shape[0], out_h), x)
    return np.clip(np.floor(x + 0.5), 0, 255)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('dest_name', ['ds.zip', 'ds'])
def test_folder_with_class_labels(tmp_path, capsys, channels, dest_name):
    # Class = top-level subfolder, searched recursively; labels are the indices of the sorted class names.
    named = {'dog/b.png': random_image(8, 8, channels, 1), 'cat/x/a.png': random_image(8, 8, channels, 2),
             'cat/c.png': random_image(8, 8, channels, 3), 'bird/d.png': random_image(8, 8, channels, 4)}
    src = write_images(tmp_path / 'src', named)
    dest = str(tmp_path / 'out' / dest_name)
    code, err = run_tool(capsys, f'--source={src}', f'--dest={dest}', '--labels')
    assert code == 0 and err == []
    order = sorted(named)   # bird/d, cat/c, cat/x/a, dog/b
    images, labels = read_back(dest)
    assert len(images) == 4
    for got, name in zip(images, order):
        np.testing.assert_array_equal(got, hwc(named[name]))
    assert labels == [0, 1, 1, 2]
    assert sorted(os.listdir(tmp_path / 'out')) == [dest_name]     # the temporary was renamed, nothing else
    if dest_name == 'ds':
        assert sorted(os.listdir(dest)) == ['00000', 'dataset.json']

def test_folder_without_labels_and_max_images(tmp_path, capsys):
    named = {f'img{i}.png': random_image(4, 4, 3, i) for i in range(5)}
    src = write_images(tmp_path / 'src', named)
    dest = str(tmp_path / 'ds.zip')
    assert run_tool(capsys, f'--source={src}', f'--dest={dest}', '--max-images=3')[0] == 0
    with zipfile.ZipFile(dest) as zf:
        assert json.loads(zf.read('dataset.json')) == {'labels': None}
        assert sorted(zf.namelist()) == ['00000/img00000000.png', '00000/img00000001.png', '00000/img00000002.png', 'dataset.json']
    images, _ = read_back(dest, use_labels=False)
    for got, name in zip(images, sorted(named)[:3]):
        np.testing.assert_array_equal(got, named[name])

def test_zip_source_resized_keeps_labels(tmp_path, capsys):
    # A zip with a dataset.json (e.g. an earlier output) keeps its labels when re-processed at a lower resolution.
    images = [random_image(16, 16, 3, i) for i in range(3)]
    src = str(tmp_path / 'src.zip')
    with zipfile.ZipFile(src, 'w') as zf:
        for i, image in enumerate(images):
            zf.writestr(f'00000/img{i:08d}.png', png_bytes(image))
        zf.writestr('__MACOSX/00000/._img00000000.png', b'not an image')
        zf.writestr('dataset.json', json.dumps({'labels': [[f'00000/img{i:08d}.png', [0.5, i]] for i in range(3)]}))
    dest = str(tmp_path / 'ds.zip')
    assert run_tool(capsys, f'--source={src}', f'--dest={dest}', '--resolution=8x8')[0] == 0
    got, labels = read_back(dest)
    assert labels == [[0.5, 0.0], [0.5, 1.0], [0.5, 2.0]]
    for g, image in zip(got, images):
        np.testing.assert_allclose(g, lanczos_reference(image, 8, 8), atol=1)

#----------------------------------------------------------------------------

def write_cifar10(path, per_batch=3):
    """cifar-10-python.tar.gz layout: pickled dicts (protocol 2, bytes keys) with b'data' uint8 rows of 3072 bytes
    (1024 red, 1024 green, 1024 blue, each row-major) and b'labels' a list of ints."""
    rnd = np.random.RandomState(0)
    images = rnd.randint(0, 256, size=[6 * per_batch, 32, 32, 3]).astype(np.uint8)
    labels = rnd.randint(0, 10, size=6 * per_batch).tolist()
    with tarfile.open(path, 'w:gz') as tar:
        batches = [f'data_batch_{b}' for b in range(1, 6)] + ['test_batch']
        for b, name in enumerate(batches):
            rows = range(b * per_batch, (b + 1) * per_batch)
            data = np.stack([np.concatenate([images[i][:, :, c].ravel() for c in range(3)]) for i in rows])
            blob = pickle.dumps({b'batch_label': name.encode(), b'labels': [labels[i] for i in rows], b'data': data,
                b'filenames': [f'{i}.png'.encode() for i in rows]}, protocol=2)
            # The published files were pickled before NumPy 2 renamed numpy.core to numpy._core.
            blob = blob.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
            info = tarfile.TarInfo(f'cifar-10-batches-py/{name}')
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return images[:5 * per_batch], labels[:5 * per_batch]

def test_cifar10(tmp_path, capsys):
    images, labels = write_cifar10(tmp_path / 'cifar-10-python.tar.gz')
    dest = str(tmp_path / 'cifar10.zip')
    assert run_tool(capsys, f'--source={tmp_path / "cifar-10-python.tar.gz"}', f'--dest={dest}')[0] == 0
    got, got_labels = read_back(dest)
    assert len(got) == len(images) == 15    # the training batches only, not test_batch
    for g, image in zip(got, images):
        np.testing.assert_array_equal(g, image)
    assert got_labels == labels

#----------------------------------------------------------------------------

def write_mnist(folder, prefix, n=4):
    """MNIST idx files: big-endian uint32 magic (2051 images, 2049 labels) and dimensions, then uint8 data, gzipped."""
    rnd = np.random.RandomState(1)
    images = rnd.randint(0, 256, size=[n, 28, 28]).astype(np.uint8)
    labels = rnd.randint(0, 10, size=n).astype(np.uint8)
    os.makedirs(folder, exist_ok=True)
    with gzip.open(os.path.join(folder, f'{prefix}-images-idx3-ubyte.gz'), 'wb') as f:
        f.write(np.array([2051, n, 28, 28], dtype='>u4').tobytes() + images.tobytes())
    with gzip.open(os.path.join(folder, f'{prefix}-labels-idx1-ubyte.gz'), 'wb') as f:
        f.write(np.array([2049, n], dtype='>u4').tobytes() + labels.tobytes())
    return images, labels.tolist()

@pytest.mark.parametrize('as_folder', [False, True])
def test_mnist(tmp_path, capsys, as_folder):
    prefix = 'train' if as_folder else 't10k'
    images, labels = write_mnist(tmp_path / 'mnist', prefix)
    source = tmp_path / 'mnist' if as_folder else tmp_path / 'mnist' / f'{prefix}-images-idx3-ubyte.gz'
    dest = str(tmp_path / 'mnist.zip')
    assert run_tool(capsys, f'--source={source}', f'--dest={dest}')[0] == 0
    got, got_labels = read_back(dest)
    assert got_labels == labels
    for g, image in zip(got, images):
        expected = np.zeros([32, 32, 1], dtype=np.uint8)
        expected[2:30, 2:30, 0] = image
        np.testing.assert_array_equal(g, expected)

#----------------------------------------------------------------------------

def test_digits(tmp_path, capsys):
    from sklearn.datasets import load_digits
    dest = str(tmp_path / 'digits.zip')
    assert run_tool(capsys, '--source=digits', f'--dest={dest}')[0] == 0
    with zipfile.ZipFile(dest) as zf:
        assert '00001/img00001000.png' in zf.namelist() and '00000/img00001000.png' not in zf.namelist()
    got, labels = read_back(dest)
    assert len(got) == 1797
    assert labels == load_digits().target.tolist()
    reference = DigitsDataset(resolution=32)
    for i in range(0, 1797, 97):
        np.testing.assert_array_equal(got[i], reference[i][0].transpose(1, 2, 0))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('w, h, res, channels', [(29, 16, 16, 3), (40, 24, 8, 3), (20, 37, 8, 1), (12, 12, 32, 3)])
def test_center_crop(tmp_path, capsys, w, h, res, channels):
    image = random_image(h, w, channels, seed=w)
    src = write_images(tmp_path / 'src', {'a.png': image})
    dest = str(tmp_path / 'ds.zip')
    assert run_tool(capsys, f'--source={src}', f'--dest={dest}', '--transform=center-crop', f'--resolution={res}x{res}')[0] == 0
    got = read_back(dest, use_labels=False)[0][0]
    crop = min(w, h)
    top, left = (h - crop) // 2, (w - crop) // 2
    expected = hwc(image)[top : top + crop, left : left + crop]
    if crop == res:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, lanczos_reference(expected, res, res), atol=1)

def test_center_crop_wide(tmp_path, capsys):
    image = random_image(30, 40, 3)
    src = write_images(tmp_path / 'src', {'car.png': image})
    dest = str(tmp_path / 'ds.zip')
    assert run_tool(capsys, f'--source={src}', f'--dest={dest}', '--transform=center-crop-wide', '--width=16', '--height=8')[0] == 0
    got = read_back(dest, use_labels=False)[0][0]
    assert got.shape == (16, 16, 3)
    # The 2:1 box of a 40x30 image is rows 5..24, all columns; it lands letterboxed in rows 4..11 of the canvas.
    np.testing.assert_allclose(got[4:12], lanczos_reference(image[5:25], 16, 8), atol=1)
    assert np.all(got[:4] == 0) and np.all(got[12:] == 0)

def test_lanczos_reference_matches_pillow():
    # The reference itself, on a size pair the tool tests do not cover (up- and downscaling in one call).
    image = random_image(10, 24, 3)
    pillow = np.array(PIL.Image.fromarray(image).resize((7, 16), PIL.Image.LANCZOS))
    np.testing.assert_allclose(pillow, lanczos_reference(image, 7, 16), atol=1)

#----------------------------------------------------------------------------

def test_lmdb_missing_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'lmdb', None)   # import lmdb raises ImportError, whether installed or not
    os.makedirs(tmp_path / 'bedroom_train_lmdb')
    (tmp_path / 'bedroom_train_lmdb' / 'data.mdb').write_bytes(b'')
    code, err = run_tool(capsys, f'--source={tmp_path / "bedroom_train_lmdb"}', f'--dest={tmp_path / "out" / "ds.zip"}')
    assert code == 2 and len(err) == 1 and 'pip install lmdb' in err[0]
    assert not os.path.exists(tmp_path / 'out')

def encoded(image, fmt):
    """LSUN's values: JPEG at quality 75 as in its release, or WebP (the name its export script gives the files)."""
    buf = io.BytesIO()
    PIL.Image.fromarray(image).save(buf, format=fmt, quality=75)
    return buf.getvalue()

def write_lsun(folder, values):
    """An LSUN category folder (data.mdb, lock.mdb): keys of 40 hex digits (ASCII), one encoded image per value.
    LMDB keeps the keys sorted, whatever order they were put in."""
    import lmdb
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key.encode('ascii'), value)
    env.close()
    return str(folder)

def lsun_values():
    """Five decodable images as LSUN has them (smaller side fixed, landscape and portrait, JPEG and WebP, one
    grayscale JPEG) and a JPEG cut short, the third in key order; put into the database out of key order."""
    keys = [f'{k:040x}' for k in [7, 0x2a, 0x3b0, 0x3b1, 0xffff, 0xfffff]]
    data = [encoded(random_image(16, 24, 3, 0), 'jpeg'), encoded(random_image(20, 16, 3, 1), 'webp'),
            encoded(random_image(16, 16, 3, 2), 'jpeg')[:200], encoded(random_image(16, 16, 1, 3), 'jpeg'),
            encoded(random_image(16, 20, 3, 4), 'webp'), encoded(random_image(24, 16, 3, 5), 'jpeg')]
    return keys, {keys[i]: data[i] for i in [4, 0, 5, 2, 3, 1]}

def center_crop_resize(data, res):
    """The reference: decode with Pillow, grayscale replicated to RGB, largest centered square, Lanczos to res."""
    image = np.array(PIL.Image.open(io.BytesIO(data)))
    image = np.repeat(image[:, :, np.newaxis], 3, axis=2) if image.ndim == 2 else image
    h, w, _ = image.shape
    crop = min(h, w)
    image = image[(h - crop) // 2 : (h - crop) // 2 + crop, (w - crop) // 2 : (w - crop) // 2 + crop]
    return lanczos_reference(image, res, res)

@pytest.mark.parametrize('max_images', [None, 3])
def test_lsun(tmp_path, capsys, max_images):
    keys, values = lsun_values()
    src = write_lsun(tmp_path / 'church_outdoor_train_lmdb', values)
    assert dataset_tool.open_source(src)[0] == 6
    dest = str(tmp_path / 'ds.zip')
    code, out, err = run_command(capsys, dataset_tool.main, 'dataset_tool.py', f'--source={src}', f'--dest={dest}',
        '--transform=center-crop', '--resolution=8x8', *([f'--max-images={max_images}'] if max_images else []))
    assert code == 0
    assert len(err) == 1 and err[0].startswith('warning: ') and f'{src}[{keys[2]}]' in err[0] and err[0].endswith('; skipped')
    good = [keys[i] for i in [0, 1, 3, 4, 5]][:max_images]
    assert out == [f'{dest}: {len(good)} images, 8x8, 3 channels, no labels; 1 skipped']
    got, _ = read_back(dest, use_labels=False)
    assert len(got) == len(good)
    for g, key in zip(got, good):
        np.testing.assert_allclose(g, center_crop_resize(values[key], 8), atol=1)

#----------------------------------------------------------------------------

def write_truncated(tmp_path):
    named = {'a.png': random_image(8, 8, 3, 0), 'b.png': png_bytes(random_image(8, 8, 3, 1))[:60], 'c.png': random_image(8, 8, 3, 2)}
    return write_images(tmp_path / 'src', named), named

def test_truncated_image_skipped(tmp_path, capsys):
    src, named = write_truncated(tmp_path)
    dest = str(tmp_path / 'ds.zip')
    code, err = run_tool(capsys, f'--source={src}', f'--dest={dest}')
    assert code == 0
    assert len(err) == 1 and err[0].startswith('warning: ') and os.path.join(src, 'b.png') in err[0] and 'skipped' in err[0]
    images, _ = read_back(dest, use_labels=False)
    assert len(images) == 2
    np.testing.assert_array_equal(images[0], named['a.png'])
    np.testing.assert_array_equal(images[1], named['c.png'])

def test_truncated_image_strict(tmp_path, capsys):
    src, _ = write_truncated(tmp_path)
    code, err = run_tool(capsys, f'--source={src}', f'--dest={tmp_path / "out" / "ds.zip"}', '--strict')
    assert code == 2 and len(err) == 1
    assert err[0].startswith('dataset_tool.py: error: ') and os.path.join(src, 'b.png') in err[0]
    assert sorted(os.listdir(tmp_path)) == ['src']

def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    src = write_images(tmp_path / 'src', {f'{i}.png': random_image(4, 4, 3, i) for i in range(3)})
    original = dataset_tool.transform_image
    calls = []
    def interrupt_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt()
        return original(*args)
    monkeypatch.setattr(dataset_tool, 'transform_image', interrupt_second)
    for dest in ['ds.zip', 'ds']:
        with pytest.raises(KeyboardInterrupt):
            dataset_tool.convert_dataset(source=src, dest=str(tmp_path / 'out' / dest))
        calls.clear()
        assert sorted(os.listdir(tmp_path)) == ['src']

#----------------------------------------------------------------------------

def _file(path, data=b''):
    path.write_bytes(data)
    return str(path)

def _tar(path, blob=None):
    # A tarball with no CIFAR-10 batches, or whose data_batch_1 is the given pickle.
    with tarfile.open(path, 'w:gz') as tar:
        if blob is not None:
            info = tarfile.TarInfo('cifar-10-batches-py/data_batch_1')
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return str(path)

def _bad_mnist(folder):
    os.makedirs(folder)
    for kind in ['images-idx3', 'labels-idx1']:
        with gzip.open(os.path.join(folder, f'train-{kind}-ubyte.gz'), 'wb') as f:
            f.write(np.array([1234, 1, 28, 28], dtype='>u4').tobytes())
    return str(folder)

def _not_lmdb(folder):
    os.makedirs(folder)
    (folder / 'data.mdb').write_bytes(np.random.RandomState(0).bytes(20000))
    return str(folder)

def _corrupt_lsun(folder):
    # A valid database of several leaf pages whose last one gets a garbage header: LMDB opens it and reads the
    # values of the other pages, then fails when its cursor reaches that page.
    values = {f'{i:040x}': encoded(random_image(16, 24, 3, i), 'jpeg') for i in range(20)}
    import lmdb
    write_lsun(folder, values)
    with lmdb.open(str(folder), readonly=True, lock=False) as env:
        page_size = env.stat()['psize']
    data = bytearray((folder / 'data.mdb').read_bytes())
    page = data.find(values[f'{19:040x}']) // page_size
    data[page * page_size : page * page_size + 16] = b'\xff' * 16
    (folder / 'data.mdb').write_bytes(bytes(data))
    return str(folder)

# A pickle that would construct an object other than numpy arrays: refused without running it.
_EVIL_PICKLE = pickle.dumps({b'data': np.zeros([1, 3072], np.uint8), b'labels': [0], b'meta': collections.OrderedDict()})

ERRORS = {
    # name: (setup(tmp_path) -> source, extra args, words the message must contain)
    'mixed_channels':   (lambda t: write_images(t / 'src', {'a.png': random_image(8, 8, 3), 'b.png': random_image(8, 8, 1)}), [], ['b.png', 'channels']),
    'non_square':       (lambda t: write_images(t / 'src', {'a.png': random_image(8, 16, 3)}), [], ['a.png', 'square', '--transform=center-crop']),
    'not_power_of_two': (lambda t: write_images(t / 'src', {'a.png': random_image(24, 24, 3)}), [], ['a.png', 'power of two']),
    'mixed_sizes':      (lambda t: write_images(t / 'src', {'a.png': random_image(8, 8, 3), 'b.png': random_image(16, 16, 3)}), [], ['b.png', '--resolution']),
    'resolution_npot':  (lambda t: 'digits', ['--resolution=24x24'], ['--resolution=24x24', 'power of two']),
    'resolution_rect':  (lambda t: 'digits', ['--resolution=32x16'], ['--resolution=32x16', 'square']),
    'resolution_form':  (lambda t: 'digits', ['--resolution=32by32'], ['--resolution', 'WxH']),
    'crop_needs_size':  (lambda t: 'digits', ['--transform=center-crop'], ['--transform=center-crop', '--resolution']),
    'width_only':       (lambda t: 'digits', ['--width=32'], ['--width', '--height']),
    'resolution_twice': (lambda t: 'digits', ['--resolution=32', '--width=32', '--height=32'], ['--resolution', '--width']),
    'alpha':            (lambda t: write_images(t / 'src', {'a.png': random_image(8, 8, 4)}), [], ['a.png', 'alpha']),
    'labels_flat':      (lambda t: write_images(t / 'src', {'a.png': random_image(8, 8, 3)}), ['--labels'], ['a.png', 'subfolder']),
    'labels_digits':    (lambda t: 'digits', ['--labels'], ['--labels', 'digits']),
    'no_images':        (lambda t: write_images(t / 'src', {'notes.txt': b'hello'}), [], ['src', 'no PNG']),
    'missing_source':   (lambda t: str(t / 'nope'), [], ['nope', 'no such file']),
    'unknown_source':   (lambda t: _file(t / 'data.csv', b'1,2'), [], ['data.csv', 'expected a folder']),
    'bad_zip':          (lambda t: _file(t / 'src.zip', b'not a zip'), [], ['src.zip', 'not a valid zip']),
    'cifar_members':    (lambda t: _tar(t / 'c.tar.gz'), [], ['c.tar.gz', 'data_batch_1']),
    'cifar_not_gzip':   (lambda t: _file(t / 'c.tar.gz', b'junk'), [], ['c.tar.gz', 'CIFAR-10']),
    'cifar_pickle':     (lambda t: _tar(t / 'c.tar.gz', _EVIL_PICKLE), [], ['c.tar.gz', 'OrderedDict']),
    'mnist_magic':      (lambda t: _bad_mnist(t / 'mnist'), [], ['train-images-idx3-ubyte.gz', 'magic number 2051']),
    'mnist_no_labels':  (lambda t: _file(t / 'train-images-idx3-ubyte.gz'), [], ['train-labels-idx1-ubyte.gz']),
    'lmdb_not_lmdb':    (lambda t: _not_lmdb(t / 'bedroom_train_lmdb'), [], ['bedroom_train_lmdb', 'cannot open lmdb database']),
    'lmdb_corrupt':     (lambda t: _corrupt_lsun(t / 'bedroom_train_lmdb'), ['--transform=center-crop', '--resolution=8x8'], ['bedroom_train_lmdb', 'cannot read lmdb database', 'MDB_CORRUPTED']),
}

@pytest.mark.parametrize('name', list(ERRORS))
def test_errors(tmp_path, capsys, name):
    setup, args, words = ERRORS[name]
    source = setup(tmp_path)
    before = sorted(os.listdir(tmp_path))
    code, err = run_tool(capsys, f'--source={source}', f'--dest={tmp_path / "out" / "ds.zip"}', *args)
    assert code == 2
    assert len(err) == 1 and err[0].startswith('dataset_tool.py: error: '), err
    for word in words:
        assert word in err[0], (word, err[0])
    assert sorted(os.listdir(tmp_path)) == before     # no dest, no temporary, no created parent folder

@pytest.mark.parametrize('dest_name', ['ds.zip', 'ds'])
def test_error_dest_holds_data(tmp_path, capsys, dest_name):
    dest = tmp_path / dest_name
    if dest_name.endswith('.zip'):
        dest.write_bytes(b'old')
    else:
        write_images(dest, {'old.png': random_image(4, 4)})
    code, err = run_tool(capsys, '--source=digits', f'--dest={dest}')
    assert code == 2 and len(err) == 1 and f'--dest={dest}' in err[0] and 'already exists' in err[0]
    assert sorted(os.listdir(tmp_path)) == [dest_name]
    if dest_name.endswith('.zip'):
        assert dest.read_bytes() == b'old'
    else:
        assert os.listdir(dest) == ['old.png']

def test_empty_dest_folder_is_used(tmp_path, capsys):
    from sklearn.datasets import load_digits
    os.makedirs(tmp_path / 'ds')
    assert run_tool(capsys, '--source=digits', f'--dest={tmp_path / "ds"}', '--max-images=2')[0] == 0
    assert read_back(str(tmp_path / 'ds'))[1] == load_digits().target[:2].tolist()

#----------------------------------------------------------------------------
