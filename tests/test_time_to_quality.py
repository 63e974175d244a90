"""The time-to-quality benchmark's own logic (benchmarks/multigrid_time_to_quality.py): wall-clock read from BasicSR's
log lines, the reach time between checkpoints, the per-seed summary against the same seed's baseline, and the redraw
from a results file (refused for a file of another benchmark). No training."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'benchmarks'))
import multigrid_time_to_quality as ttq  # noqa: E402

LOG = """2026-12-07 10:00:00,000 INFO: Start training from epoch: 0, iter: 0
2026-12-07 10:00:30,500 INFO: [demo..][epoch:  0, iter:     100, lr:(5.000e-04,)] l_pix: 1.0e-01
2026-12-07 10:00:31,000 INFO: Saving models and training states.
2026-12-07 10:01:10,250 INFO: Saving models and training states.
"""


def _points(*pairs):
    return [{'iter': 100 * (k + 1), 'seconds': s, 'psnr': p} for k, (s, p) in enumerate(pairs)]


def test_checkpoint_seconds_counts_from_start_training():
    assert ttq.checkpoint_seconds(LOG, every=100) == {100: 31.0, 200: 70.25}


def test_checkpoint_seconds_refuses_a_resumed_log():
    resumed = LOG + LOG.splitlines()[0] + '\n'
    with pytest.raises(ValueError, match='found 2'):
        ttq.checkpoint_seconds(resumed, every=100)


def test_reach_seconds_interpolates_between_checkpoints_and_says_never():
    points = _points((10.0, 26.0), (20.0, 27.0), (30.0, 27.5))
    assert ttq.reach_seconds(points, 26.5) == pytest.approx(15.0)
    assert ttq.reach_seconds(points, 25.0) == 10.0  # already there at the first checkpoint
    assert ttq.reach_seconds(points, 28.0) is None


def test_summary_compares_each_seed_with_its_own_baseline():
    curves = {'baseline': {0: _points((100.0, 26.5), (200.0, 27.0)), 1: _points((100.0, 26.0), (200.0, 26.6))},
              ttq.METHOD: {0: _points((40.0, 26.96), (80.0, 27.2)), 1: _points((40.0, 26.7), (80.0, 26.8))}}
    summary = ttq.summarise(curves, {'psnr': 25.8})
    method = summary[ttq.METHOD]
    assert [row['reach_seconds'] for row in method['per_seed']] == [pytest.approx(40.0), pytest.approx(40.0)]
    assert method['reach_ratio'] == pytest.approx(0.2)
    assert method['gap_db'] == pytest.approx(0.2)
    assert method['total_ratio'] == pytest.approx(0.4)
    assert summary['baseline']['over_bilinear_db'] == pytest.approx(26.8 - 25.8)


def test_redraw_draws_from_a_results_file_and_refuses_another(tmp_path, capsys):
    curves = {'baseline': {'0': _points((100.0, 26.5), (200.0, 27.0))},
              ttq.METHOD: {'0': _points((40.0, 26.9), (80.0, 27.2))}}
    report = {'benchmark': ttq.BENCHMARK, 'iters': 200, 'curves': curves, 'bilinear_reference': {'psnr': 25.9}}
    (tmp_path / 'mine.json').write_text(json.dumps(report))
    ttq.main(['--redraw', '--out', str(tmp_path / 'mine')])
    assert (tmp_path / 'mine.png').stat().st_size > 0
    (tmp_path / 'other.json').write_text(json.dumps({**report, 'benchmark': 'ssl_quality'}))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        ttq.main(['--redraw', '--out', str(tmp_path / 'other')])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'argument --out' in last and 'not a results file of multigrid_time_to_quality' in last
    assert not (tmp_path / 'other.png').exists()
