"""Tests for torch_utils.training_stats: Collector num/mean/std against numpy, update semantics, opt-in
accumulation by regex, report0, and the cross-rank all-reduce with two gloo processes."""

import json
import weakref

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils import training_stats

#----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def fresh_stats(monkeypatch):
    """Each test gets empty module state, as in a freshly started process."""
    for name, value in [('_counters', {}), ('_collectors', weakref.WeakSet()), ('_collect_regexes', []), ('_is_collected', {}),
                        ('_rank', 0), ('_sync_device', None), ('_sync_called', False)]:
        monkeypatch.setattr(training_stats, name, value)

#----------------------------------------------------------------------------

def test_mean_std_num_match_numpy():
    rng = np.random.RandomState(0)
    collector = training_stats.Collector(regex='Loss/.*')
    reported = []
    for value in [rng.randn(7).astype(np.float32), torch.tensor(rng.randn(2, 3)), 2.5, [1.0, -4.0]]:
        assert training_stats.report('Loss/G', value) is value # Returned unchanged, to wrap expressions.
        reported.append(np.asarray(value, dtype=np.float64).ravel())
    training_stats.report('Loss/D', torch.tensor(3.0))
    collector.update()
    ref = np.concatenate(reported)
    assert collector.num('Loss/G') == ref.size
    assert collector.mean('Loss/G') == pytest.approx(ref.mean(), rel=1e-6)
    assert collector['Loss/G'] == collector.mean('Loss/G')
    assert collector.std('Loss/G') == pytest.approx(ref.std(), rel=1e-6) # Population std (ddof = 0).
    assert (collector.num('Loss/D'), collector.mean('Loss/D'), collector.std('Loss/D')) == (1, 3.0, 0.0)
    assert collector.names() == ['Loss/D', 'Loss/G']
    stats = collector.as_dict()
    assert isinstance(stats, dnnlib.EasyDict) and list(stats) == ['Loss/D', 'Loss/G']
    assert stats['Loss/G'].num == ref.size and stats['Loss/G'].mean == pytest.approx(ref.mean(), rel=1e-6)
    json.dumps(stats) # Goes straight into the stats log.

def test_large_offset_values_keep_precision():
    values = 1e4 + np.arange(1000) * 1e-3 # In float32 the sum of squares (~1e11) would swamp the spread.
    collector = training_stats.Collector()
    training_stats.report('x', torch.tensor(values, dtype=torch.float64))
    collector.update()
    assert collector.std('x') == pytest.approx(values.std(), rel=1e-4)

def test_unknown_and_empty_names():
    collector = training_stats.Collector()
    training_stats.report('empty', [])
    collector.update()
    assert collector.names() == ['empty']
    assert collector.num('empty') == 0 and np.isnan(collector.mean('empty')) and np.isnan(collector.std('empty'))
    assert np.isnan(collector['never_reported'])

def test_update_windows_and_keep_previous():
    keep = training_stats.Collector(regex='v')
    drop = training_stats.Collector(regex='v', keep_previous=False)
    slow = training_stats.Collector(regex='v')
    training_stats.report('v', [1.0, 2.0])
    keep.update()
    drop.update()
    training_stats.report('v', [10.0])
    keep.update()
    drop.update()
    assert keep.mean('v') == 10.0 and drop.mean('v') == 10.0 # Only what was reported since the last update.
    keep.update()
    drop.update()
    assert keep.mean('v') == 10.0 and keep.num('v') == 1 # Nothing new: keep the previous window.
    assert drop.num('v') == 0 and np.isnan(drop.mean('v'))
    slow.update() # Collectors are independent: this one sees everything since its construction.
    assert slow.num('v') == 3 and slow.mean('v') == pytest.approx(13.0 / 3)

def test_reports_before_construction_do_not_count():
    training_stats.report('a', 5.0) # Nobody collects 'a' yet: not even registered.
    assert 'a' not in training_stats._counters
    collector = training_stats.Collector(regex='a')
    training_stats.report('b', 1.0)
    assert 'b' not in training_stats._counters
    training_stats.report('a', 1.0)
    collector.update()
    assert collector.num('a') == 1 and collector.names() == ['a']

def test_report0_counts_rank0_only():
    training_stats.init_multiprocessing(rank=1, sync_device=None)
    collector = training_stats.Collector()
    assert training_stats.report0('r0', 7.0) == 7.0
    training_stats.report('all', 1.0)
    collector.update()
    assert collector.names() == ['all', 'r0'] # Registered on every rank, so the all-reduce lines up.
    assert collector.num('r0') == 0 and collector.num('all') == 1
    with pytest.raises(RuntimeError):
        training_stats.init_multiprocessing(rank=0, sync_device=None) # Too late: already synced.

#----------------------------------------------------------------------------

def _worker(rank, init_file, result_file):
    torch.distributed.init_process_group('gloo', init_method='file://' + init_file, rank=rank, world_size=2)
    training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
    collector = training_stats.Collector(regex='.*')
    values = [1.0, 2.0, 3.0] if rank == 0 else [10.0, -4.0]
    training_stats.report('Loss/x', values)
    training_stats.report0('Progress/tick', 5.0 + rank)
    collector.update()
    with open(f'{result_file}.{rank}', 'w') as f:
        json.dump(collector.as_dict(), f)
    torch.distributed.destroy_process_group()

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_all_reduce_across_two_processes(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip('torch.distributed is not available in this PyTorch build')
    result = str(tmp_path / 'result')
    torch.multiprocessing.spawn(_worker, args=(str(tmp_path / 'init'), result), nprocs=2)
    ref = np.array([1.0, 2.0, 3.0, 10.0, -4.0])
    for rank in range(2):
        stats = json.load(open(f'{result}.{rank}'))
        assert stats['Loss/x']['num'] == 5
        assert stats['Loss/x']['mean'] == pytest.approx(ref.mean())
        assert stats['Loss/x']['std'] == pytest.approx(ref.std())
        assert stats['Progress/tick'] == dict(num=1, mean=5.0, std=0.0) # Rank 0's value only.

#----------------------------------------------------------------------------

def test_nonfinite_value_spoils_only_its_interval():
    # A NaN loss in one tick must not turn every later tick's mean into NaN (nor another collector's).
    fast = training_stats.Collector(regex='Loss/.*')
    slow = training_stats.Collector(regex='Loss/G')
    training_stats.report('Loss/G', [1.0, float('nan')])
    fast.update()
    assert np.isnan(fast.mean('Loss/G')) and fast.num('Loss/G') == 2
    training_stats.report('Loss/G', [2.0, 4.0])
    fast.update()
    assert fast.mean('Loss/G') == 3.0 and fast.num('Loss/G') == 2
    slow.update()
    assert np.isnan(slow.mean('Loss/G')) and slow.num('Loss/G') == 4     # slow's interval saw all four values
    training_stats.report('Loss/G', [5.0])
    slow.update()
    assert slow.mean('Loss/G') == 5.0
