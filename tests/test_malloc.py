"""dnnlib/malloc.py: the allocator settings are in force after tune_malloc() (a 16 MiB block comes from the heap,
not from its own mmap, as mallinfo2 counts them), and are left alone when the user chose glibc's variables or
DIFFUSION_GAN_MALLOC=default. Each case runs in a fresh process: mallopt settings last for the process."""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# mallinfo2 (glibc >= 2.33): hblkhd = bytes in mmapped blocks. A 16 MiB block is above glibc's default threshold.
_SCRIPT = '''
import ctypes, json
from dnnlib.malloc import tune_malloc
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost']]
libc = ctypes.CDLL('libc.so.6')
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
tuned = tune_malloc()
before = libc.mallinfo2().hblkhd
block = libc.malloc(16 << 20)
mmapped = libc.mallinfo2().hblkhd - before
libc.free(ctypes.c_void_p(block))
print(json.dumps(dict(tuned=tuned, tuned_again=tune_malloc(), mmapped=mmapped)))
'''

def run_case(**env_changes):
    env = {key: value for key, value in os.environ.items() if not key.startswith('MALLOC_') and key != 'DIFFUSION_GAN_MALLOC'}
    env.update(env_changes)
    out = subprocess.run([sys.executable, '-c', _SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='mallopt and mallinfo2 are glibc (Linux) functions')
def test_tune_malloc():
    tuned = run_case()
    assert tuned == dict(tuned=True, tuned_again=True, mmapped=0)
    for env in [dict(DIFFUSION_GAN_MALLOC='default'), dict(MALLOC_TOP_PAD_='1048576')]:
        untouched = run_case(**env)
        assert untouched['tuned'] is False and untouched['tuned_again'] is False, env
        assert untouched['mmapped'] >= 16 << 20, env
