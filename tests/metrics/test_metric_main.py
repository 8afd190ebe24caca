"""Tests of metrics/metric_main.py: the registry, every recommended metric end to end on a tiny generator and the
built-in digits with a cheap stand-in detector (FID checked against numpy statistics of the whole dataset),
isolation of the caller's random stream, the JSON-lines report, and a two-process group against one process."""

import json
import math
import os
import pickle

import numpy as np
import pytest
import scipy.linalg
import torch

import dnnlib
from metrics import metric_main, metric_utils, precision_recall
from tests.metrics.helpers import digits_kwargs, distributed_worker, fake_features, tiny_generator, use_fake_detectors

#----------------------------------------------------------------------------

def test_registry():
    names = metric_main.list_valid_metrics()
    for name in ['fid50k_full', 'fid10k_full', 'fid2k_full', 'kid50k_full', 'pr50k3_full', 'is50k', 'ppl2_wend']:
        assert metric_main.is_valid_metric(name) and name in names
    assert not metric_main.is_valid_metric('fid')
    assert metric_main.parse_metric_list(' fid50k_full, kid50k_full ') == ['fid50k_full', 'kid50k_full']
    assert metric_main.parse_metric_list('none') == []
    with pytest.raises(dnnlib.UserError, match='unknown metric "fid"'):
        metric_main.parse_metric_list('fid50k_full,fid')
    with pytest.raises(dnnlib.UserError, match='unknown metric'):
        metric_main.calc_metric('fid', G=None, dataset_kwargs={})

def test_recommended_metrics_end_to_end(monkeypatch, tmp_path):
    use_fake_detectors(monkeypatch, tmp_path)
    G = tiny_generator(img_channels=1)
    torch.manual_seed(5)
    rng_state = torch.get_rng_state()
    results = {}
    for metric in ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'is50k', 'ppl2_wend']:
        result = metric_main.calc_metric(metric, G=G, dataset_kwargs=digits_kwargs(), device='cpu', num_gen=20)
        assert result.metric == metric and result.num_gpus == 1 and result.num_gen == 20 and result.total_time >= 0
        assert isinstance(result.total_time_str, str)
        results.update(result.results)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert set(results) == {'fid50k_full', 'kid50k_full', 'pr50k3_full_precision', 'pr50k3_full_recall', 'is50k_mean', 'is50k_std', 'ppl2_wend'}
    assert all(math.isfinite(v) for v in results.values()), results
    assert 0 <= results['pr50k3_full_precision'] <= 1 and 0 <= results['pr50k3_full_recall'] <= 1
    assert 1 <= results['is50k_mean'] <= 10 and results['ppl2_wend'] >= 0

    # FID against statistics of all 1797 digits and of the 20 generated images, computed here with numpy.
    dataset = dnnlib.util.construct_class_by_name(**digits_kwargs())
    real = fake_features(np.stack([dataset[i][0] for i in range(len(dataset))]))
    assert len(real) == 1797
    opts = metric_utils.MetricOptions(G=G, dataset_kwargs=digits_kwargs(), device='cpu')
    gen = metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
        capture_all=True, max_items=20).get_all().astype(np.float64)
    cov_real, cov_gen = np.cov(real, rowvar=False, bias=True), np.cov(gen, rowvar=False, bias=True)
    expected = np.square(real.mean(0) - gen.mean(0)).sum() + np.trace(cov_real + cov_gen - 2 * np.real(scipy.linalg.sqrtm(cov_real @ cov_gen)))
    np.testing.assert_allclose(results['fid50k_full'], expected, rtol=1e-4)

    # Deterministic: the same generator gives the same value again (dataset statistics now from the cache).
    again = metric_main.calc_metric('fid50k_full', G=G, dataset_kwargs=digits_kwargs(), device='cpu', num_gen=20)
    assert again.results.fid50k_full == results['fid50k_full']

def test_report_metric_appends_json_lines(tmp_path, capsys):
    result = dnnlib.EasyDict(results=dnnlib.EasyDict(fid50k_full=12.5), metric='fid50k_full', total_time=1.0, total_time_str='1s', num_gpus=1, num_gen=None)
    snapshot = os.path.join(tmp_path, 'network-snapshot-000000.pkl')
    metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=snapshot)
    metric_main.report_metric(dict(result, results=dict(fid50k_full=10.0)), run_dir=str(tmp_path), snapshot_pkl=snapshot)
    lines = (tmp_path / 'metric-fid50k_full.jsonl').read_text().splitlines()
    assert [json.loads(line)['results']['fid50k_full'] for line in lines] == [12.5, 10.0]
    assert json.loads(lines[0])['snapshot_pkl'] == 'network-snapshot-000000.pkl' and 'timestamp' in json.loads(lines[0])
    assert capsys.readouterr().out.splitlines() == lines
    metric_main.report_metric(result) # no run dir: printed only
    assert len((tmp_path / 'metric-fid50k_full.jsonl').read_text().splitlines()) == 2

#----------------------------------------------------------------------------

@pytest.mark.slow('several processes (gloo ranks or spawned trainings)')
def test_process_group_matches_single_process(monkeypatch, tmp_path):
    # Two CPU processes (gloo) stand in for two GPUs: sharded dataset features come back in dataset order,
    # distances gathered from both ranks give the single-process precision/recall, every rank gets the result.
    detector_path = use_fake_detectors(monkeypatch, tmp_path)
    torch.multiprocessing.spawn(distributed_worker, args=(2, str(tmp_path), detector_path), nprocs=2)
    ranks = []
    for rank in range(2):
        with open(tmp_path / f'rank{rank}.pkl', 'rb') as f:
            ranks.append(pickle.load(f))
    dataset = dnnlib.util.construct_class_by_name(**digits_kwargs())
    expected = fake_features(np.stack([dataset[i][0] for i in range(301)]))
    rnd = np.random.RandomState(0)
    expected_pr = precision_recall.pr_from_features(torch.from_numpy(rnd.randn(40, 6)), torch.from_numpy(rnd.randn(33, 6) + 0.4), nhood_size=3)
    for result in ranks:
        np.testing.assert_allclose(result['features'], expected, rtol=1e-5)
        assert result['pr'] == expected_pr
        assert math.isfinite(result['fid']) and result['fid'] == ranks[0]['fid']
