"""Tests for dnnlib.util: EasyDict, object construction by name, formatting, file listing, Logger and open_url
(local paths, file:// URLs, http downloads from a local server into the cache, and the offline error)."""

import copy
import functools
import hashlib
import http.server
import io
import os
import pickle
import sys
import threading

import pytest

import dnnlib
from dnnlib import util

#----------------------------------------------------------------------------

def test_easydict_attribute_and_item_access_are_equivalent():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    d['c'] = 3
    assert d == {'a': 1, 'b': 2, 'c': 3}
    assert (d.a, d.b, d.c) == (d['a'], d['b'], d['c'])
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError):
        _ = d.missing
    assert getattr(d, 'missing', 42) == 42 and not hasattr(d, 'missing')
    with pytest.raises(AttributeError):
        del d.missing

def test_easydict_pickles_and_copies_as_dnnlib_util_easydict():
    d = dnnlib.EasyDict(x=[1, 2], y=dnnlib.EasyDict(z=3))
    assert b'dnnlib.util' in pickle.dumps(d) and b'EasyDict' in pickle.dumps(d) # Official pickles reference this path.
    for other in [pickle.loads(pickle.dumps(d)), copy.deepcopy(d)]:
        assert type(other) is dnnlib.util.EasyDict and other == d and other.y.z == 3
        assert other.x is not d.x

def test_user_error_is_exported():
    assert dnnlib.UserError is util.UserError and issubclass(dnnlib.UserError, Exception)

#----------------------------------------------------------------------------

def test_construct_and_call_by_name():
    assert util.construct_class_by_name([('k', 1)], class_name='collections.OrderedDict') == {'k': 1}
    frac = util.construct_class_by_name(3, 4, class_name='fractions.Fraction')
    assert float(frac) == 0.75
    assert util.call_func_by_name('a', 'b', func_name='os.path.join') == os.path.join('a', 'b')
    assert util.get_obj_by_name('dnnlib.util.EasyDict') is dnnlib.EasyDict
    assert util.get_obj_by_name('os.path') is os.path
    module, local = util.get_module_from_obj_name('dnnlib.util.EasyDict.__getattr__')
    assert module is util and local == 'EasyDict.__getattr__'
    with pytest.raises(Exception):
        util.get_obj_by_name('no_such_module_xyz.Thing')
    with pytest.raises(dnnlib.UserError):
        util.call_func_by_name(func_name='dnnlib.util._version_does_not_exist')

def test_top_level_function_name():
    assert util.get_top_level_function_name(util.format_time) == 'dnnlib.util.format_time'
    with pytest.raises(ValueError):
        util.get_top_level_function_name(lambda: 0)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('seconds, expected', [
    (0, '0s'), (59.4, '59s'), (60, '1m 00s'), (185, '3m 05s'), (3600, '1h 00m 00s'),
    (2 * 3600 + 3 * 60 + 5, '2h 03m 05s'), (86400 + 2 * 3600 + 3 * 60 + 4, '1d 02h 03m'),
])
def test_format_time(seconds, expected):
    assert util.format_time(seconds) == expected

def test_tuple_product():
    assert util.tuple_product(()) == 1
    assert util.tuple_product((2, 3, 7)) == 42

def test_make_cache_dir_path_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path))
    assert util.make_cache_dir_path('a', 'b') == os.path.join(str(tmp_path), 'a', 'b')
    monkeypatch.delenv('DNNLIB_CACHE_DIR')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert util.make_cache_dir_path('x') == os.path.join(str(tmp_path / 'home'), '.cache', 'dnnlib', 'x')

def test_list_and_copy_files(tmp_path):
    src = tmp_path / 'src'
    (src / 'sub').mkdir(parents=True)
    (src / '__pycache__').mkdir()
    (src / 'a.py').write_text('a')
    (src / 'sub' / 'b.txt').write_text('b')
    (src / 'sub' / 'c.pyc').write_text('c')
    (src / '__pycache__' / 'd.py').write_text('d')
    files = util.list_dir_recursively_with_ignore(str(src), ignores=['__pycache__', '*.pyc'])
    assert sorted(rel for _, rel in files) == ['a.py', os.path.join('sub', 'b.txt')]
    with_base = util.list_dir_recursively_with_ignore(str(src), ignores=['__pycache__', '*.pyc'], add_base_to_relative=True)
    assert sorted(rel for _, rel in with_base) == [os.path.join('src', 'a.py'), os.path.join('src', 'sub', 'b.txt')]
    dst = tmp_path / 'dst'
    util.copy_files_and_create_dirs([(abs_path, str(dst / rel)) for abs_path, rel in files])
    assert (dst / 'sub' / 'b.txt').read_text() == 'b' and (dst / 'a.py').read_text() == 'a'

#----------------------------------------------------------------------------

def test_logger_tees_stdout_and_stderr(tmp_path, capsys):
    log = tmp_path / 'log.txt'
    orig_out, orig_err = sys.stdout, sys.stderr
    with util.Logger(file_name=str(log), file_mode='w') as logger:
        assert sys.stdout is logger and sys.stderr is logger
        print('hello')
        sys.stderr.write('oops\n')
        sys.stdout.write(b'bytes\n')
    assert sys.stdout is orig_out and sys.stderr is orig_err
    assert log.read_text() == 'hello\noops\nbytes\n'
    assert 'hello' in capsys.readouterr().out
    with util.Logger(file_name=str(log), file_mode='a'):
        print('more')
    assert log.read_text().endswith('bytes\nmore\n')

#----------------------------------------------------------------------------

def test_is_url():
    assert util.is_url('https://example.com/a/b.pkl')
    assert util.is_url('http://127.0.0.1:8000/x')
    assert not util.is_url('/local/path.pkl')
    assert not util.is_url('file:///tmp/x.pkl')
    assert util.is_url('file:///tmp/x.pkl', allow_file_urls=True)
    assert not util.is_url(123)

def test_open_url_local_path_and_file_url(tmp_path):
    path = tmp_path / 'data with space.bin'
    path.write_bytes(b'\x00\x01payload')
    with util.open_url(str(path)) as f:
        assert f.read() == b'\x00\x01payload'
    url = path.as_uri() # Percent-encodes the space.
    with util.open_url(url) as f:
        assert f.read() == b'\x00\x01payload'
    assert os.path.samefile(util.open_url(url, return_filename=True), path)
    with pytest.raises(ValueError):
        util.open_url(str(path), return_filename=True, cache=False)

@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}', server
    server.shutdown()
    server.server_close()

def test_open_url_downloads_into_md5_keyed_cache(http_server, tmp_path):
    root, base, server = http_server
    (root / 'net.pkl').write_bytes(b'network bytes')
    url = base + '/net.pkl'
    cache_dir = tmp_path / 'cache'
    with util.open_url(url, cache_dir=str(cache_dir), verbose=False) as f:
        assert f.read() == b'network bytes'
    expected = cache_dir / (hashlib.md5(url.encode('utf-8')).hexdigest() + '_net.pkl')
    assert expected.read_bytes() == b'network bytes'
    assert [p.name for p in cache_dir.iterdir()] == [expected.name] # No temp files left behind.

    # Cached: works after the server is gone.
    server.shutdown()
    server.server_close()
    assert os.path.samefile(util.open_url(url, cache_dir=str(cache_dir), return_filename=True, verbose=False), expected)

def test_open_url_without_cache_returns_memory_file(http_server, tmp_path):
    root, base, _ = http_server
    (root / 'x.bin').write_bytes(b'abc')
    f = util.open_url(base + '/x.bin', cache_dir=str(tmp_path / 'c'), cache=False, verbose=False)
    assert isinstance(f, io.BytesIO) and f.read() == b'abc'
    assert not (tmp_path / 'c').exists()

def test_open_url_offline_error_names_cache_file(http_server, tmp_path):
    _, base, _ = http_server
    url = base + '/missing.pkl' # 404: not retried.
    with pytest.raises(dnnlib.UserError) as info:
        util.open_url(url, cache_dir=str(tmp_path), num_attempts=3, verbose=False)
    msg = str(info.value)
    assert url in msg and os.path.join(str(tmp_path), hashlib.md5(url.encode('utf-8')).hexdigest() + '_missing.pkl') in msg
    assert '\n' not in msg

    # A file placed there by hand is picked up without any network access.
    (tmp_path / (hashlib.md5(url.encode('utf-8')).hexdigest() + '_missing.pkl')).write_bytes(b'manual')
    with util.open_url(url, cache_dir=str(tmp_path), verbose=False) as f:
        assert f.read() == b'manual'

def test_open_url_connection_refused(tmp_path):
    with pytest.raises(dnnlib.UserError, match='place the file at'):
        util.open_url('http://127.0.0.1:9/x.pkl', cache_dir=str(tmp_path), num_attempts=1, verbose=False)

#----------------------------------------------------------------------------
