"""Tests for torch_utils.misc: constant caching, assert_shape (eager and traced), tracer-warning suppression,
profiling labels, InfiniteSampler, parameter copying, DDP helpers (2 gloo processes) and the module summary."""

import copy
import warnings

import numpy as np
import pytest
import torch

from torch_utils import misc

#----------------------------------------------------------------------------

def test_constant_values_shape_and_cache():
    a = misc.constant([1, 2, 3], dtype=torch.float64)
    assert a.dtype == torch.float64 and a.tolist() == [1.0, 2.0, 3.0]
    assert misc.constant([1, 2, 3], dtype=torch.float64) is a # Cached: same tensor object.
    assert misc.constant([1, 2, 3], dtype=torch.float32) is not a
    assert misc.constant([1, 2, 4], dtype=torch.float64) is not a
    b = misc.constant(0.5, shape=[2, 3])
    assert b.dtype == torch.get_default_dtype() and b.shape == (2, 3) and torch.all(b == 0.5)
    c = misc.constant(np.arange(3), shape=[4, 3], dtype=torch.int64)
    assert torch.equal(c, torch.arange(3).expand(4, 3)) and c.is_contiguous()

def test_constant_created_in_inference_mode_is_usable_with_autograd():
    with torch.inference_mode():
        c = misc.constant([2.0, 3.0], dtype=torch.float32)
    assert not c.is_inference()
    x = torch.ones(2, requires_grad=True)
    (x * c).sum().backward()
    assert x.grad.tolist() == [2.0, 3.0]

def test_nan_to_num():
    x = torch.tensor([float('nan'), float('inf'), -float('inf'), 1.5])
    y = misc.nan_to_num(x, nan=0.0, posinf=7.0, neginf=-7.0)
    assert y.tolist() == [0.0, 7.0, -7.0, 1.5]

#----------------------------------------------------------------------------

def test_assert_shape_accepts_and_rejects():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [2, 3, 4])
    misc.assert_shape(x, [None, 3, None])
    with pytest.raises(AssertionError, match='dimension 1'):
        misc.assert_shape(x, [2, 5, 4])
    with pytest.raises(AssertionError, match='number of dimensions'):
        misc.assert_shape(x, [2, 3])
    misc.assert_shape(x, [torch.tensor(2), None, 4]) # Tensor-valued sizes, as seen under tracing.
    with pytest.raises(Exception):
        misc.assert_shape(x, [torch.tensor(5), None, 4])

@pytest.mark.filterwarnings('ignore:.*torch.jit.trace.*:DeprecationWarning')
def test_assert_shape_under_tracing():
    def fn(x):
        misc.assert_shape(x, [None, 3])
        return x * 2
    with warnings.catch_warnings():
        warnings.simplefilter('error', torch.jit.TracerWarning) # assert_shape itself must not warn.
        traced = torch.jit.trace(fn, torch.ones(2, 3))
    assert torch.equal(traced(torch.full([5, 3], 1.5)), torch.full([5, 3], 3.0))
    with pytest.raises(AssertionError):
        torch.jit.trace(fn, torch.ones(2, 4))

def test_suppress_tracer_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with misc.suppress_tracer_warnings():
            warnings.warn('traced', torch.jit.TracerWarning)
            warnings.warn('other', UserWarning)
        warnings.warn('traced again', torch.jit.TracerWarning) # Filter restored on exit.
    assert [str(w.message) for w in caught] == ['other', 'traced again']

def test_profiled_function_labels_calls():
    @misc.profiled_function
    def my_labelled_op(x, k=1):
        return x + k
    assert my_labelled_op.__name__ == 'my_labelled_op'
    with torch.autograd.profiler.profile() as prof:
        y = my_labelled_op(torch.zeros(2), k=3)
    assert y.tolist() == [3.0, 3.0]
    assert 'my_labelled_op' in [evt.name for evt in prof.function_events]

#----------------------------------------------------------------------------

def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]

def test_infinite_sampler_without_shuffle_cycles_in_order():
    data = list(range(5))
    assert _take(misc.InfiniteSampler(data, shuffle=False), 12) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert _take(misc.InfiniteSampler(data, rank=1, num_replicas=2, shuffle=False), 5) == [1, 3, 0, 2, 4]

def test_infinite_sampler_first_pass_is_seeded_permutation():
    # Without the reshuffle window the stream is one fixed permutation repeated; the permutation is the one
    # numpy's RandomState(seed) produces, which is what makes runs comparable with StyleGAN2-ADA.
    n, seed = 17, 123
    stream = _take(misc.InfiniteSampler(range(n), seed=seed, window_size=0), 3 * n)
    perm = np.random.RandomState(seed).permutation(n).tolist()
    assert stream == perm * 3

def test_infinite_sampler_ranks_partition_the_global_stream():
    n, replicas, steps = 23, 3, 40
    full = _take(misc.InfiniteSampler(range(n), seed=7), replicas * steps)
    per_rank = [_take(misc.InfiniteSampler(range(n), rank=r, num_replicas=replicas, seed=7), steps) for r in range(replicas)]
    interleaved = [per_rank[k % replicas][k // replicas] for k in range(replicas * steps)]
    assert interleaved == full

    # Without reshuffling, the ranks' shares of one pass are disjoint and together cover the data set.
    n = 24
    shares = [set(_take(misc.InfiniteSampler(range(n), rank=r, num_replicas=replicas, seed=7, window_size=0), n // replicas)) for r in range(replicas)]
    assert set.union(*shares) == set(range(n)) and sum(len(s) for s in shares) == n

def test_infinite_sampler_covers_every_index_evenly_and_is_deterministic():
    n, passes = 20, 200
    stream = _take(misc.InfiniteSampler(range(n), seed=3), n * passes)
    counts = np.bincount(stream, minlength=n)
    assert counts.min() > 0 and counts.sum() == n * passes
    assert np.abs(counts / passes - 1).max() < 0.15 # Every index is drawn about once per pass.
    assert stream[:100] == _take(misc.InfiniteSampler(range(n), seed=3), 100)
    assert stream[:100] != _take(misc.InfiniteSampler(range(n), seed=4), 100)
    assert stream[:2 * n] != stream[:n] * 2 # The window keeps reshuffling.

def test_infinite_sampler_in_dataloader_and_bad_args():
    loader = torch.utils.data.DataLoader(torch.arange(10) * 10, sampler=misc.InfiniteSampler(range(10), shuffle=False), batch_size=4)
    batches = iter(loader)
    assert next(batches).tolist() == [0, 10, 20, 30]
    assert next(batches).tolist() == [40, 50, 60, 70]
    assert next(batches).tolist() == [80, 90, 0, 10]
    with pytest.raises(ValueError):
        misc.InfiniteSampler(range(4), rank=2, num_replicas=2)
    with pytest.raises(Exception):
        misc.InfiniteSampler([])

#----------------------------------------------------------------------------

class _Net(torch.nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.fc = torch.nn.Linear(2, width)
        self.bn = torch.nn.BatchNorm1d(width)

def test_params_and_buffers():
    net = _Net()
    names = [name for name, _ in misc.named_params_and_buffers(net)]
    assert names == ['fc.weight', 'fc.bias', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']
    assert [t is u for t, (_, u) in zip(misc.params_and_buffers(net), misc.named_params_and_buffers(net))] == [True] * 7

def test_copy_params_and_buffers():
    torch.manual_seed(0)
    src, dst = _Net(), _Net()
    with torch.no_grad():
        src.bn.running_mean.normal_()
    dst.fc.weight.requires_grad_(False)
    misc.copy_params_and_buffers(src, dst, require_all=True)
    for (name, a), (_, b) in zip(misc.named_params_and_buffers(src), misc.named_params_and_buffers(dst)):
        assert torch.equal(a, b), name
        assert a.data_ptr() != b.data_ptr()
    assert not dst.fc.weight.requires_grad and dst.fc.bias.requires_grad

    # Destination entries missing in the source: kept unless require_all.
    partial = torch.nn.Module()
    partial.fc = torch.nn.Linear(2, 3)
    dst2 = _Net()
    before = dst2.bn.weight.detach().clone()
    misc.copy_params_and_buffers(partial, dst2)
    assert torch.equal(dst2.fc.weight, partial.fc.weight) and torch.equal(dst2.bn.weight, before)
    with pytest.raises(KeyError, match='bn.weight'):
        misc.copy_params_and_buffers(partial, _Net(), require_all=True)
    with pytest.raises(ValueError, match='fc.weight'):
        misc.copy_params_and_buffers(_Net(width=4), _Net(width=3))

class _LightDDP(torch.nn.parallel.DistributedDataParallel):
    """A DistributedDataParallel without a process group: real no_sync(), none of the setup (which imports dynamo)."""
    def __init__(self, module):
        torch.nn.Module.__init__(self)
        self.module = module
        self.require_backward_grad_sync = True

def test_ddp_sync():
    net = _Net()
    with misc.ddp_sync(net, sync=False): # Plain modules: nothing to skip.
        pass
    ddp = _LightDDP(net)
    flags = []
    for sync in [False, True]:
        with misc.ddp_sync(ddp, sync=sync):
            flags.append(ddp.require_backward_grad_sync)
    assert flags == [False, True] and ddp.require_backward_grad_sync
    with pytest.raises(TypeError):
        with misc.ddp_sync(object(), sync=True):
            pass

def test_check_ddp_consistency_without_process_group():
    misc.check_ddp_consistency(_Net()) # One process: trivially consistent, must not need a process group.

def _consistency_worker(rank, init_file, result_file):
    torch.distributed.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=2)
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 2)
    misc.check_ddp_consistency(net)
    with torch.no_grad():
        net.weight[0, 0] = float('nan') # NaN on both ranks still counts as equal.
    misc.check_ddp_consistency(net)

    # Diverge the last tensor only, so both ranks still run the same sequence of broadcasts.
    if rank == 1:
        with torch.no_grad():
            net.bias[0] += 1
    try:
        misc.check_ddp_consistency(net)
        diverged = 'undetected'
    except AssertionError as e:
        diverged = 'detected' if 'Linear.bias' in str(e) else str(e)
    misc.check_ddp_consistency(net, ignore_regex=r'Linear\.bias')
    with open(f'{result_file}.{rank}', 'w') as f:
        f.write(diverged)
    torch.distributed.destroy_process_group()

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_check_ddp_consistency_two_processes(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip('torch.distributed is not available in this PyTorch build')
    result = str(tmp_path / 'result')
    torch.multiprocessing.spawn(_consistency_worker, args=(str(tmp_path / 'init'), result), nprocs=2)
    assert open(result + '.0').read() == 'undetected' # Rank 0 compares with itself.
    assert open(result + '.1').read() == 'detected'

#----------------------------------------------------------------------------

class _Summary(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh())
        self.head = torch.nn.Linear(8, 2)
        self.register_buffer('offset', torch.ones(5))
    def forward(self, x):
        h = self.body(x)
        return self.head(h), h

def test_print_module_summary(capsys):
    torch.manual_seed(0)
    net = _Summary()
    x = torch.randn(3, 4)
    out = misc.print_module_summary(net, [x])
    ref = net(x)
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip() and not line.startswith('---')}
    assert rows['body.0'][:3] == ['40', '-', '[3,']
    assert rows['head'][:3] == ['18', '-', '[3,']
    assert rows['<top-level>'][:2] == ['-', '5'] # Only the buffer the children don't own.
    assert rows['Total'][:2] == [str(4 * 8 + 8 + 8 * 2 + 2), '5']
    assert 'body' not in rows # A Sequential that passes on its last child's output adds nothing.
    assert '<top-level>:1' in rows

def test_print_module_summary_max_nesting(capsys):
    net = _Summary()
    misc.print_module_summary(net, [torch.randn(1, 4)], max_nesting=0)
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
    names = [line[0] for line in lines]
    assert names[2] == '<top-level>' and 'head' not in names and 'body.0' not in names
    # Everything folded into the top level: its row holds all parameters and buffers, as the total does.
    assert lines[2][1:3] == ['58', '5'] and [line[1:3] for line in lines if line[0] == 'Total'] == [['58', '5']]

#----------------------------------------------------------------------------

def test_deepcopy_module_with_graph_tensors():
    # Spectral normalization stores the normalized weight, computed in the forward pass, as a plain attribute: while
    # it is part of an autograd graph copy.deepcopy refuses the module; deepcopy_module copies it detached.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.utils.spectral_norm(torch.nn.Linear(3, 4)))
    net(torch.randn(2, 3)).sum().backward()
    with pytest.raises(RuntimeError):
        copy.deepcopy(net)
    clone = misc.deepcopy_module(net)
    assert torch.equal(clone[0].weight, net[0].weight) and clone[0].weight.grad_fn is None
    assert torch.equal(clone[0].weight_orig, net[0].weight_orig) and clone[0].weight_orig is not net[0].weight_orig
    x = torch.randn(5, 3)
    assert torch.equal(clone.eval()(x), net.eval()(x))
