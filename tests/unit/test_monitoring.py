from pathlib import Path

import numpy as np
import pandas as pd

from honing.config import MonitoringConfig
from honing.data import detect_changes
from honing.monitoring import ColumnDrift, DriftReport, drift_report, gate, with_performance


def _frames(shift: float):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {
            "a": rng.normal(size=1500),
            "b": rng.normal(size=1500),
            "c": rng.choice(["x", "y"], size=1500),
        }
    )
    cur = pd.DataFrame(
        {
            "a": rng.normal(shift, 1, size=1500),
            "b": rng.normal(size=1500),
            "c": rng.choice(["x", "y"], size=1500),
        }
    )
    return ref, cur


def test_drift_report_finds_the_shifted_column(tmp_path: Path):
    ref, cur = _frames(shift=1.5)
    report = drift_report(
        ref, cur, numeric=["a", "b"], categorical=["c"], html_path=tmp_path / "drift.html"
    )
    assert report.drifted == ["a"]
    assert report.drifted_share == 1 / 3
    assert (tmp_path / "drift.html").stat().st_size > 10_000
    same = drift_report(ref, _frames(shift=0.0)[1], numeric=["a", "b"], categorical=["c"])
    assert same.drifted == []


def _report(share: float, perf=None, ref=None) -> DriftReport:
    cols = [ColumnDrift("a", "K-S p_value", 0.001, 0.05, share > 0)]
    return with_performance(DriftReport(100, 100, cols, share), perf or {}, ref or {})


def test_gate_on_drift_share_and_metric_drop():
    cfg = MonitoringConfig(drift_share=0.3, metric="roc_auc", max_metric_drop=0.05)
    assert not gate(_report(0.0), cfg).retrain
    decision = gate(_report(0.5), cfg)
    assert decision.retrain and "50% of columns drifted" in decision.reasons[0]
    dropped = gate(_report(0.0, {"roc_auc": 0.70}, {"roc_auc": 0.80}), cfg)
    assert dropped.retrain and "roc_auc fell by 0.1000" in dropped.reasons[0]
    assert not gate(_report(0.0, {"roc_auc": 0.78}, {"roc_auc": 0.80}), cfg).retrain


def test_detect_changes_records_a_baseline_then_reports_changes(tmp_path: Path):
    data, state = tmp_path / "d.csv", tmp_path / "state.json"
    data.write_text("a\n1\n")
    assert detect_changes([data, tmp_path / "missing.csv"], state) == []
    assert detect_changes([data], state) == []
    data.write_text("a\n2\n")
    changes = detect_changes([data], state)
    assert [c.path for c in changes] == [str(data)] and changes[0].old_md5 != changes[0].new_md5
    assert detect_changes([data], state) == []
