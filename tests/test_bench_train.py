"""benchmarks/bench_train.py: --compare runs the reference (glibc allocator defaults, REFERENCE_KNOBS) and the fast
path (with and without --bf16) in processes of their own and reports each; the options parse and bad ones give one
line. Speeds are not tested (benchmarks print them)."""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO_ROOT, 'benchmarks', 'bench_train.py')
TINY = ['--res=16', '--iters=1', '--warmup=0']

def run_bench(*args, **env_changes):
    env = {key: value for key, value in os.environ.items() if not key.startswith('MALLOC_') and key != 'DIFFUSION_GAN_MALLOC'}
    env.update(env_changes)
    return subprocess.run([sys.executable, BENCH, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True)

@pytest.mark.slow('benchmark subprocesses')
def test_compare_runs_every_path():
    result = run_bench('--cfg=demo', *TINY, '--compare', '--rounds=1')
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record['reference']['malloc_tuned'] is False
    assert record['fast']['malloc_tuned'] is True and record['fast_bf16']['malloc_tuned'] is True
    for name in ['fast', 'fast_bf16']:
        assert {'train_speedup', 'gen_speedup', 'rss_ratio', 'train_frac_of_bf16_peak'} <= set(record[name])
        assert record[name]['train_speedup'] == round(record[name]['train_img_per_s'] / record['reference']['train_img_per_s'], 3)

@pytest.mark.slow('benchmark subprocesses')
def test_paths_set_what_they_say():
    reference = run_bench('--cfg=demo', *TINY, '--path=reference', DIFFUSION_GAN_MALLOC='default')
    fast = run_bench('--cfg=demo', *TINY, '--bf16=1')
    assert reference.returncode == 0 and fast.returncode == 0, reference.stderr + fast.stderr
    reference, fast = json.loads(reference.stdout), json.loads(fast.stdout)
    assert (reference['path'], reference['malloc_tuned'], reference['bf16']) == ('reference', False, False)
    assert (fast['path'], fast['malloc_tuned'], fast['bf16'], fast['fp16_res']) == ('fast', True, True, 4)

@pytest.mark.slow('benchmark subprocesses')
def test_bad_options_one_line():
    for args, words in [(['--path=reference'], '--path=reference needs glibc\'s default allocator'),
                        (['--cfg=dcgan_demo', '--bf16=1'], '--bf16: --cfg=dcgan_demo has no bfloat16 layers'),
                        (['--cbase=abc'], "'--cbase'")]:
        result = run_bench(*TINY, *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith('bench_train.py: error: ') and words in lines[0], (args, result.stderr)

@pytest.mark.slow('benchmark subprocesses')
def test_compare_without_bf16_layers():
    result = run_bench('--cfg=dcgan_demo', *TINY, '--compare', '--rounds=1')
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert 'fast_bf16' not in record and record['fast']['malloc_tuned'] is True
