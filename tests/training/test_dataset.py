"""Tests of training/dataset.py: exact pixels and labels read back from PNG folders and zips written here,
mirroring, subsets, pickling, every user error, and the built-in digits against scikit-learn's originals."""

import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest

import dnnlib
from training.dataset import DigitsDataset, ImageFolderDataset

#----------------------------------------------------------------------------

def _random_images(n, res=8, channels=3, seed=0):
    shape = [n, res, res] + ([channels] if channels != 1 else [])
    return np.random.RandomState(seed).randint(0, 256, size=shape).astype(np.uint8)

def _write_pngs(folder, images, names=None):
    names = names or [f'{i // 3:05d}/img{i:08d}.png' for i in range(len(images))]
    for name, image in zip(names, images):
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
        PIL.Image.fromarray(image).save(os.path.join(folder, name))
    return names

def _zip_folder(folder, zip_path):
    with zipfile.ZipFile(zip_path, 'w') as zf:
        for root, _dirs, files in os.walk(folder):
            for fname in files:
                full = os.path.join(root, fname)
                zf.write(full, os.path.relpath(full, folder).replace(os.sep, '/'))
    return str(zip_path)

def _write_labels(folder, names, labels):
    with open(os.path.join(folder, 'dataset.json'), 'w') as f:
        json.dump({'labels': [[name, label] for name, label in zip(names, labels)]}, f)

def _chw(image):
    return image[np.newaxis] if image.ndim == 2 else image.transpose(2, 0, 1)

def _user_error(*words, **kwargs):
    """Construct an ImageFolderDataset, expect a one-line UserError containing every word, return the message."""
    with pytest.raises(dnnlib.UserError) as info:
        ImageFolderDataset(**kwargs)
    message = str(info.value)
    assert '\n' not in message
    for word in words:
        assert str(word) in message
    return message

#----------------------------------------------------------------------------

@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('as_zip', [False, True])
def test_exact_pixels(tmp_path, channels, as_zip):
    images = _random_images(7, res=8, channels=channels)
    src = tmp_path / 'mydata'
    names = _write_pngs(src, images)
    path = _zip_folder(src, tmp_path / 'mydata.zip') if as_zip else str(src)
    ds = ImageFolderDataset(path=path)
    assert len(ds) == 7 and ds.name == 'mydata'
    assert ds.image_shape == [channels, 8, 8] and ds.num_channels == channels and ds.resolution == 8
    assert ds.label_shape == [0] and ds.label_dim == 0 and not ds.has_labels
    order = np.argsort(names)   # items come sorted by relative path
    for idx in range(7):
        image, label = ds[idx]
        assert image.dtype == np.uint8 and image.shape == (channels, 8, 8)
        np.testing.assert_array_equal(image, _chw(images[order[idx]]))
        assert label.dtype == np.float32 and label.shape == (0,)
    ds.close()

def test_sorted_by_relative_path(tmp_path):
    images = _random_images(3, res=4)
    _write_pngs(tmp_path, images, names=['b.png', 'a/z.png', 'C.PNG'])
    ds = ImageFolderDataset(path=str(tmp_path))
    expected = {'C.PNG': images[2], 'a/z.png': images[1], 'b.png': images[0]}
    for idx, name in enumerate(sorted(expected)):
        np.testing.assert_array_equal(ds[idx][0], _chw(expected[name]))

def test_other_formats_and_resolution_arg(tmp_path):
    images = _random_images(2, res=16)
    ramp = np.arange(16, dtype=np.uint8) * 16
    images[1] = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128), axis=2)   # smooth, for JPEG
    PIL.Image.fromarray(images[0]).save(tmp_path / 'a.bmp')
    PIL.Image.fromarray(images[1]).save(tmp_path / 'b.jpg', quality=95, subsampling=0)
    (tmp_path / 'notes.txt').write_text('not an image')
    ds = ImageFolderDataset(path=str(tmp_path), resolution=16)
    assert len(ds) == 2
    np.testing.assert_array_equal(ds[0][0], _chw(images[0]))
    assert np.abs(ds[1][0].astype(int) - _chw(images[1])).mean() < 4   # lossy JPEG: close, not exact

def test_palette_png_gives_rgb_intensities(tmp_path):
    rgb = _random_images(1, res=8)[0] // 64 * 64   # few colors, so the palette is lossless
    PIL.Image.fromarray(rgb).convert('P', palette=PIL.Image.ADAPTIVE, colors=64).save(tmp_path / 'p.png')
    ds = ImageFolderDataset(path=str(tmp_path))
    np.testing.assert_array_equal(ds[0][0], _chw(rgb))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('as_zip', [False, True])
def test_int_labels_onehot(tmp_path, as_zip):
    images = _random_images(6, res=4)
    src = tmp_path / 'src'
    names = _write_pngs(src, images)
    classes = [3, 0, 2, 3, 1, 0]
    _write_labels(src, list(reversed(names)), list(reversed(classes)))   # order in the file must not matter
    path = _zip_folder(src, tmp_path / 'd.zip') if as_zip else str(src)
    ds = ImageFolderDataset(path=path, use_labels=True)
    assert ds.has_labels and ds.has_onehot_labels and ds.label_shape == [4] and ds.label_dim == 4
    for idx in range(6):
        image, label = ds[idx]
        np.testing.assert_array_equal(image, _chw(images[idx]))
        assert label.dtype == np.float32
        np.testing.assert_array_equal(label, np.eye(4, dtype=np.float32)[classes[idx]])
        np.testing.assert_array_equal(ds.get_label(idx), label)
        assert ds.get_details(idx).raw_label == classes[idx]

def test_float_labels(tmp_path):
    names = _write_pngs(tmp_path, _random_images(3, res=4))
    vectors = [[0.5, -1.0], [2.0, 0.25], [0.0, 3.5]]
    _write_labels(tmp_path, names, vectors)
    ds = ImageFolderDataset(path=str(tmp_path), use_labels=True)
    assert ds.has_labels and not ds.has_onehot_labels and ds.label_shape == [2]
    for idx in range(3):
        assert ds[idx][1].dtype == np.float32
        np.testing.assert_array_equal(ds[idx][1], np.float32(vectors[idx]))

def test_labels_ignored_without_use_labels(tmp_path):
    _write_pngs(tmp_path, _random_images(2, res=4))
    (tmp_path / 'dataset.json').write_text('{broken')
    ds = ImageFolderDataset(path=str(tmp_path))
    assert ds[0][1].shape == (0,) and not ds.has_labels

#----------------------------------------------------------------------------

def test_xflip(tmp_path):
    images = _random_images(4, res=8)
    names = _write_pngs(tmp_path, images)
    _write_labels(tmp_path, names, [0, 1, 2, 3])
    ds = ImageFolderDataset(path=str(tmp_path), xflip=True, use_labels=True)
    assert len(ds) == 8
    for idx in range(4):
        np.testing.assert_array_equal(ds[idx][0], _chw(images[idx]))
        np.testing.assert_array_equal(ds[idx + 4][0], np.flip(_chw(images[idx]), axis=2))
        np.testing.assert_array_equal(ds[idx + 4][1], ds[idx][1])
        assert not ds.get_details(idx).xflip and ds.get_details(idx + 4).xflip
        assert ds.get_details(idx + 4).raw_idx == idx

def test_max_size(tmp_path):
    images = _random_images(20, res=4)
    _write_pngs(tmp_path, images)
    path = str(tmp_path)
    ds = ImageFolderDataset(path=path, max_size=5, random_seed=1)
    assert len(ds) == 5
    raw = [ds.get_details(i).raw_idx for i in range(5)]
    assert raw == sorted(set(raw)) and all(0 <= r < 20 for r in raw)
    for i, r in enumerate(raw):
        np.testing.assert_array_equal(ds[i][0], _chw(images[r]))
    # StyleGAN2-ADA's rule (seeded shuffle of all indices, first max_size, sorted) picks the same images.
    assert raw == sorted(np.random.RandomState(1).permutation(20)[:5].tolist())
    again = ImageFolderDataset(path=path, max_size=5, random_seed=1)
    assert [again.get_details(i).raw_idx for i in range(5)] == raw
    other = ImageFolderDataset(path=path, max_size=5, random_seed=2)
    assert [other.get_details(i).raw_idx for i in range(5)] != raw
    assert len(ImageFolderDataset(path=path, max_size=100)) == 20
    assert len(ImageFolderDataset(path=path, max_size=5, xflip=True)) == 10
    with pytest.raises(dnnlib.UserError, match='max_size'):
        ImageFolderDataset(path=path, max_size=0)

def test_pickle_zip(tmp_path):
    images = _random_images(4, res=8)
    src = tmp_path / 'src'
    names = _write_pngs(src, images)
    _write_labels(src, names, [1, 0, 1, 2])
    ds = ImageFolderDataset(path=_zip_folder(src, tmp_path / 'd.zip'), use_labels=True, xflip=True)
    ds[0]   # opens the zip handle, which must not be pickled
    ds2 = pickle.loads(pickle.dumps(ds))
    assert len(ds2) == 8 and ds2.label_shape == [3] and ds2.name == 'd'
    for idx in range(8):
        np.testing.assert_array_equal(ds2[idx][0], ds[idx][0])
        np.testing.assert_array_equal(ds2[idx][1], ds[idx][1])
    np.testing.assert_array_equal(ds2[5][0], np.flip(_chw(images[1]), axis=2))
    ds.close()
    ds2.close()

#----------------------------------------------------------------------------

def test_error_missing_path(tmp_path):
    _user_error(tmp_path / 'nope', 'does not exist', path=str(tmp_path / 'nope'))

def test_error_no_images(tmp_path):
    (tmp_path / 'readme.txt').write_text('hi')
    _user_error('no PNG/JPG images found in', tmp_path, path=str(tmp_path))
    with zipfile.ZipFile(tmp_path / 'e.zip', 'w') as zf:
        zf.writestr('readme.txt', 'hi')
    _user_error('no PNG/JPG images found in', tmp_path / 'e.zip', path=str(tmp_path / 'e.zip'))

def test_error_bad_zip(tmp_path):
    (tmp_path / 'fake.zip').write_bytes(b'this is not a zip archive')
    _user_error(tmp_path / 'fake.zip', 'not a valid zip file', path=str(tmp_path / 'fake.zip'))

def test_error_not_folder_or_zip(tmp_path):
    PIL.Image.fromarray(_random_images(1, res=4)[0]).save(tmp_path / 'one.png')
    _user_error(tmp_path / 'one.png', 'folder or a .zip', path=str(tmp_path / 'one.png'))

def test_error_undecodable_first_image(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'garbage, not a PNG')
    _write_pngs(tmp_path, _random_images(1, res=4), names=['b.png'])
    _user_error(os.path.join(tmp_path, 'a.png'), 'cannot decode image', path=str(tmp_path))

def test_error_undecodable_later_image_folder(tmp_path):
    _write_pngs(tmp_path, _random_images(2, res=32), names=['a.png', 'b.png'])
    (tmp_path / 'c.png').write_bytes(b'garbage, not a PNG')
    _user_error(os.path.join(tmp_path, 'c.png'), 'cannot decode image', path=str(tmp_path))

def test_error_truncated_image_in_getitem(tmp_path):
    # A valid header with cut-off pixel data passes the constructor's header scan; reading it must still name it.
    _write_pngs(tmp_path, _random_images(2, res=32), names=['a.png', 'b.png'])
    data = (tmp_path / 'b.png').read_bytes()
    (tmp_path / 'b.png').write_bytes(data[:len(data) // 2])
    ds = ImageFolderDataset(path=str(tmp_path))
    with pytest.raises(dnnlib.UserError, match='cannot decode image') as info:
        ds[1]
    assert os.path.join(tmp_path, 'b.png') in str(info.value)

def test_error_undecodable_image_in_zip_getitem(tmp_path):
    src = tmp_path / 'src'
    _write_pngs(src, _random_images(1, res=4), names=['a.png'])
    (src / 'b.png').write_bytes(b'garbage, not a PNG')
    ds = ImageFolderDataset(path=_zip_folder(src, tmp_path / 'd.zip'))
    with pytest.raises(dnnlib.UserError, match='cannot decode image') as info:
        ds[1]
    assert 'b.png' in str(info.value) and 'd.zip' in str(info.value)

def test_error_mixed_sizes_folder(tmp_path):
    _write_pngs(tmp_path, _random_images(1, res=8), names=['a.png'])
    _write_pngs(tmp_path, _random_images(1, res=16), names=['b.png'])
    _write_pngs(tmp_path, _random_images(1, res=8), names=['c.png'])
    _user_error(os.path.join(tmp_path, 'b.png'), '16x16', '8x8', os.path.join(tmp_path, 'a.png'), path=str(tmp_path))

def test_error_mixed_channels_folder(tmp_path):
    _write_pngs(tmp_path, _random_images(1, res=8, channels=3), names=['a.png'])
    _write_pngs(tmp_path, _random_images(1, res=8, channels=1), names=['b.png'])
    _user_error(os.path.join(tmp_path, 'b.png'), '1 channel', '3 channels', path=str(tmp_path))

def test_error_mixed_sizes_zip_getitem(tmp_path):
    src = tmp_path / 'src'
    _write_pngs(src, _random_images(1, res=8), names=['a.png'])
    _write_pngs(src, _random_images(1, res=16), names=['b.png'])
    ds = ImageFolderDataset(path=_zip_folder(src, tmp_path / 'd.zip'))
    with pytest.raises(dnnlib.UserError) as info:
        ds[1]
    assert 'b.png' in str(info.value) and '16x16' in str(info.value) and '8x8' in str(info.value)

def test_error_non_square(tmp_path):
    PIL.Image.fromarray(np.zeros([8, 16, 3], dtype=np.uint8)).save(tmp_path / 'wide.png')
    _user_error(os.path.join(tmp_path, 'wide.png'), '16x8', 'square', path=str(tmp_path))

def test_error_not_power_of_two(tmp_path):
    _write_pngs(tmp_path, _random_images(1, res=24), names=['a.png'])
    _user_error(os.path.join(tmp_path, 'a.png'), 'is 24x24; expected a power of two', path=str(tmp_path))

def test_error_resolution_mismatch(tmp_path):
    _write_pngs(tmp_path, _random_images(1, res=8), names=['a.png'])
    _user_error(tmp_path, 'resolution=16', '8x8', path=str(tmp_path), resolution=16)

def test_error_rgba(tmp_path):
    PIL.Image.fromarray(np.zeros([8, 8, 4], dtype=np.uint8)).save(tmp_path / 'rgba.png')
    _user_error(os.path.join(tmp_path, 'rgba.png'), '4 channels', 'alpha', path=str(tmp_path))

def test_error_sixteen_bit(tmp_path):
    PIL.Image.fromarray(np.zeros([8, 8], dtype=np.uint16)).save(tmp_path / 'deep.png')
    _user_error(os.path.join(tmp_path, 'deep.png'), '8-bit', path=str(tmp_path))

@pytest.mark.parametrize('content, words', [
    ('{"labels": [["a.png", 1]', ['not valid JSON']),
    ('[1, 2, 3]', ['expected {"labels"']),
    ('{"labels": [["a.png"], ["b.png", 0]]}', ['expected {"labels"']),
    ('{"labels": [["a.png", 1]]}', ['no label for 1 of 2 images', 'b.png']),
    ('{"labels": [["a.png", -1], ["b.png", 0]]}', ['class index >= 0']),
    ('{"labels": [["a.png", 0.5], ["b.png", 1.5]]}', ['class index >= 0']),
    ('{"labels": [["a.png", [1, 2]], ["b.png", [1]]]}', ['all vectors of one length']),
    ('{"labels": null}', ['--cond=True requires dataset.json labels in']),
])
def test_error_labels(tmp_path, content, words):
    _write_pngs(tmp_path, _random_images(2, res=4), names=['a.png', 'b.png'])
    (tmp_path / 'dataset.json').write_text(content)
    _user_error(*words, path=str(tmp_path), use_labels=True)

def test_error_cond_without_labels(tmp_path):
    _write_pngs(tmp_path, _random_images(2, res=4))
    _user_error(f'--cond=True requires dataset.json labels in {tmp_path}', path=str(tmp_path), use_labels=True)

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def sklearn_digits():
    from sklearn.datasets import load_digits
    return load_digits()

def test_digits(sklearn_digits):
    ds = DigitsDataset(use_labels=True)
    assert len(ds) == 1797 and ds.name == 'digits32' and ds.image_shape == [1, 32, 32] and ds.resolution == 32
    assert ds.has_onehot_labels and ds.label_shape == [10]
    images = np.stack([ds[i][0] for i in range(len(ds))])
    labels = np.stack([ds[i][1] for i in range(len(ds))])
    assert images.dtype == np.uint8 and images.shape == (1797, 1, 32, 32)
    np.testing.assert_array_equal(labels.argmax(axis=1), sklearn_digits.target)
    np.testing.assert_array_equal(labels.sum(axis=1), np.ones(1797, dtype=np.float32))
    # Independent check: 4x4 average pooling back to 8x8 should land near the original digits scaled to 0..255.
    reference = sklearn_digits.images * (255 / 16)
    pooled = images[:, 0].astype(np.float64).reshape(1797, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.abs(pooled - reference).mean() < 20
    assert abs(images.mean() - reference.mean()) < 3
    assert images.max() > 200 and images.min() == 0

@pytest.mark.parametrize('resolution', [8, 16, 64])
def test_digits_resolutions(sklearn_digits, resolution):
    ds = DigitsDataset(resolution=resolution, max_size=50, xflip=True)
    assert len(ds) == 100 and ds.name == f'digits{resolution}' and ds[0][1].shape == (0,)
    image, _ = ds[0]
    assert image.shape == (1, resolution, resolution) and image.dtype == np.uint8
    source = sklearn_digits.images[ds.get_details(0).raw_idx] * (255 / 16)
    f = resolution // 8
    pooled = image[0].astype(np.float64).reshape(8, f, 8, f).mean(axis=(1, 3))
    assert np.abs(pooled - source).mean() < 25
    np.testing.assert_array_equal(ds[50][0], np.flip(image, axis=2))

@pytest.mark.parametrize('resolution', [24, 4, 0, 33])
def test_digits_bad_resolution(resolution):
    with pytest.raises(dnnlib.UserError, match=f'resolution={resolution}; expected a power of two'):
        DigitsDataset(resolution=resolution)

def test_digits_pickle():
    ds = DigitsDataset(resolution=16, use_labels=True)
    ds2 = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(ds2[123][0], ds[123][0])
    np.testing.assert_array_equal(ds2[123][1], ds[123][1])

#----------------------------------------------------------------------------

def test_digits_split_is_a_stratified_partition():
    # train and heldout together are exactly the 1797 digits (as a multiset of image+label), with 40 +- 1 of each
    # class held out, and the split does not depend on the resolution.
    def rows(split, resolution=8):
        ds = DigitsDataset(resolution=resolution, split=split, use_labels=True)
        return sorted((ds[i][0].tobytes(), int(np.argmax(ds[i][1]))) for i in range(len(ds)))
    train, heldout, everything = rows('train'), rows('heldout'), rows('all')
    assert (len(train), len(heldout)) == (1397, 400)
    assert sorted(train + heldout) == everything
    counts = np.bincount([label for _image, label in heldout], minlength=10)
    assert counts.min() >= 39 and counts.max() <= 41
    labels = lambda resolution: DigitsDataset(resolution=resolution, split='heldout')._get_raw_labels().tolist()
    assert labels(8) == labels(32)
    with pytest.raises(dnnlib.UserError, match="split='test'"):
        DigitsDataset(split='test')
