"""tools/gpu_check.py: without CUDA one line and exit code 2; a failed step gives exit code 1 and the report; its op and
network comparisons catch a wrong kernel (the fake extensions of test_cuda_ops.py run on the CPU); and its --quick
form runs through on the CPU, every op on its reference, with tiny networks (the GPU run is by hand, see README)."""

import json

import pytest
import torch

import dnnlib
from tests.cli_helpers import run_command
from tests.test_train import tiny_networks
from tests.torch_utils.ops.test_cuda_ops import FAKES
from tools import gpu_check
from torch_utils import custom_ops
from torch_utils.ops import cuda_kernels

# QUICK, small enough for a CPU: one op shape, tiny networks (tiny_networks) at 16-32 px, short trainings, DDP on gloo.
CPU_SIZES = dnnlib.EasyDict(gpu_check.QUICK,
    op_shapes       = [[2, 3, 5, 6]],
    networks        = [('cifar', 32), ('stylegan2', 32), ('stylegan3-t', 16), ('stylegan3-r', 16), ('fastgan', 32)],
    train_args      = ['--batch=16', '--kimg=0.128', '--tick=0.032'],
    ddp_batch       = 4,
    ddp_steps       = 1,
    speed           = [('cifar', 32, False)],
    speed_batch     = 4,
    speed_cbase     = 256,
    speed_iters     = 1,
    speed_warmup    = 0,
    speed_peaks     = False,
)

#----------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a CUDA device')
def test_no_cuda_one_line_exit_2(capsys, tmp_path):
    code, out, err = run_command(capsys, gpu_check.main, 'gpu_check.py', '--quick', f'--out={tmp_path / "report.json"}')
    assert code == 2 and out == [] and len(err) == 1, err
    assert err[0].startswith('gpu_check.py: error: no CUDA device: torch ') and 'NVIDIA GPU' in err[0]
    assert not (tmp_path / 'report.json').exists()

@pytest.mark.parametrize('passed', [True, False])
def test_report_and_exit_code(capsys, tmp_path, monkeypatch, passed):
    def fake_run_checks(device, sizes, workdir, log, log_file):
        assert device.type == 'cuda' and sizes is gpu_check.QUICK
        return dict(steps=dict(ops=dict(passed=passed)), passed=passed, seconds=1.0)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(gpu_check, 'run_checks', fake_run_checks)
    code, out, _err = run_command(capsys, gpu_check.main, 'gpu_check.py', '--quick', f'--out={tmp_path / "report.json"}')
    assert code == (0 if passed else 1)
    assert out[-1].startswith('PASSED' if passed else 'FAILED')
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['passed'] is passed and report['quick'] is True and report['steps']['ops']['passed'] is passed

#----------------------------------------------------------------------------
# The fake extensions stand in for the kernels on the CPU; a wrong one is let past its self-check, so that only
# gpu_check's own comparisons can catch it.

@pytest.fixture
def fake_kernels(monkeypatch):
    monkeypatch.setattr(cuda_kernels, '_plugins', dict())
    monkeypatch.setattr(cuda_kernels, 'plugin_for', lambda op, self_check, x, impl: cuda_kernels.load(op, lambda plugin, device: None, x.device) if impl == 'cuda' and cuda_kernels.enabled else None)
    def use(errors: dict):
        fakes = {op: fake(error=errors.get(op, 0)) for op, fake in FAKES.items()}
        monkeypatch.setattr(custom_ops, 'get_plugin', lambda module_name, **kwargs: fakes[module_name[:-len('_plugin')]])
        return fakes
    return use

def test_ops_step_runs_the_kernels(fake_kernels):
    fakes = fake_kernels(dict())
    result = gpu_check.check_ops(torch.device('cpu'), CPU_SIZES, log=lambda line: None)
    assert result['passed'] and all(fake.calls > 0 for fake in fakes.values())
    for op, record in result['ops'].items():
        assert record['kernel'] and record['warnings'] == [], op
        assert {case['dtype'] for case in record['cases']} == {'float32', 'float16'}
        assert record['max_err']['float32'] <= gpu_check.OP_TOL[torch.float32], op

@pytest.mark.parametrize('op', ['upfirdn2d', 'filtered_lrelu']) # bias_act's fake errs in the second derivative only: the self-check's to catch
def test_ops_step_catches_a_wrong_kernel(fake_kernels, op):
    fake_kernels({op: 0.1})
    result = gpu_check.check_ops(torch.device('cpu'), CPU_SIZES, log=lambda line: None)
    assert not result['passed'] and not result['ops'][op]['passed']
    assert all(record['passed'] for name, record in result['ops'].items() if name != op)

@pytest.mark.parametrize('errors,passed', [(dict(), True), (dict(upfirdn2d=0.1), False), (dict(filtered_lrelu=0.1), False)])
def test_networks_step_compares_kernels_with_reference(fake_kernels, errors, passed):
    fake_kernels(errors)
    sizes = dnnlib.EasyDict(CPU_SIZES, networks=[('cifar', 32), ('stylegan3-t', 16)])
    result = gpu_check.check_networks(torch.device('cpu'), sizes, log=lambda line: None, shrink=tiny_networks)
    assert result['kernels_loaded'] == dict(bias_act=True, upfirdn2d=True, filtered_lrelu=True)
    assert result['passed'] is passed
    if not passed:
        assert not result['networks'][1]['passed'] and result['networks'][1]['G_grads_err'] > gpu_check.NET_TOL
    assert cuda_kernels.enabled

#----------------------------------------------------------------------------

@pytest.mark.slow('two trainings, two DDP runs in 3 processes, a benchmark')
def test_quick_run_on_cpu(tmp_path):
    lines = []
    report = gpu_check.run_checks(torch.device('cpu'), CPU_SIZES, workdir=str(tmp_path), log=lines.append, shrink=tiny_networks)
    json.dumps(report, default=str)
    assert report['passed'], [line for line in lines if 'FAIL' in line]
    steps = report['steps']
    assert list(steps) == ['environment', 'ops', 'networks', 'training', 'ddp', 'speed']
    assert all(step['passed'] is True for step in steps.values())
    assert sum('...' in line for line in lines) == 6 and sum(': PASS in ' in line for line in lines) == 6
    for run in steps['training']['runs']:
        assert run['ticks'] >= 3 and run['losses_finite'] and run['p'][-1] > 0 and run['snapshot_err'] == 0
    assert steps['ddp']['backend'] == 'gloo' and steps['ddp']['ranks_equal']
    speed, = steps['speed']['runs']
    assert speed['train_img_per_s'] > 0 and speed['custom_op_share'] is None

#----------------------------------------------------------------------------
