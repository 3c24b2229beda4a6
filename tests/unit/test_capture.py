"""The capture log (`honing.capture`): what a server keeps of its traffic, read back as a
batch, with late labels joined by request id."""

from __future__ import annotations

import json
import stat

import pandas as pd
import pytest

from honing import capture
from honing.exceptions import DataLoadError


def _log(tmp_path, **kw) -> capture.CaptureLog:
    return capture.CaptureLog(capture.CaptureConfig(tmp_path / "cap", **kw))


def test_each_answered_row_is_kept_with_its_request_version_and_answer(tmp_path):
    log = _log(tmp_path)
    rows = [{"tenure": 3, "contract": "Monthly"}, {"tenure": 40, "contract": None}]
    answers = [{"prediction": "Yes", "probability": 0.7}, {"prediction": "No", "probability": 0.1}]
    assert log.record("r-1", "4", rows, answers)
    lines = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert [(x["request_id"], x["row"], x["version"]) for x in lines] == [
        ("r-1", 0, "4"), ("r-1", 1, "4")
    ]  # fmt: skip
    assert lines[1]["inputs"] == {"tenure": 40, "contract": None}
    assert lines[0]["answer"]["probability"] == 0.7
    # private whatever the umask: the folder 0700, the file 0600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    window = capture.read_window(log.path.parent)
    assert list(window.columns) == [
        "tenure", "contract", "request_id", "row", "captured_at", "version",
        "answer.prediction", "answer.probability",
    ]  # fmt: skip
    assert capture.inputs_of(window).columns.tolist() == ["tenure", "contract"]


def test_a_sample_keeps_whole_requests_in_about_its_share(tmp_path):
    log = _log(tmp_path, sample=0.25, seed=0)
    kept = sum(log.record(f"r{i}", "1", [{"a": i}] * 3, [{"p": 0}] * 3) for i in range(400))
    assert 70 <= kept <= 130
    window = capture.read_window(log.path.parent)
    assert len(window) == 3 * kept and window.groupby("request_id").size().eq(3).all()


def test_a_file_past_its_bound_is_closed_and_reading_spans_every_file(tmp_path):
    log = _log(tmp_path, max_bytes=2048)
    for i in range(60):
        log.record(f"r{i}", "1", [{"a": i, "text": "x" * 40}], [{"p": i}])
    files = capture.capture_files(log.path.parent)
    assert len(files) > 2 and all(f.stat().st_size < 2048 + 400 for f in files)
    assert files[-1].name == capture.CURRENT and files[0].name.startswith("capture-")
    window = capture.read_window(log.path.parent)
    assert window["a"].tolist() == list(range(60))  # oldest first, none lost


def test_a_window_by_time_and_a_line_cut_short(tmp_path):
    folder = tmp_path / "cap"
    folder.mkdir()
    line = {"request_id": "a", "row": 0, "version": "1", "inputs": {"x": 1}, "answer": {"p": 0}}
    text = "".join(
        json.dumps({**line, "request_id": r, "captured_at": t}) + "\n"
        for r, t in (("a", "2026-12-01T10:00:00Z"), ("b", "2026-12-02T10:00:00Z"))
    )
    (folder / capture.CURRENT).write_text(text + '{"request_id": "c", "ro')  # killed mid-line
    assert capture.read_window(folder)["request_id"].tolist() == ["a", "b"]
    assert capture.read_window(folder, since="2026-12-02")["request_id"].tolist() == ["b"]
    assert capture.read_window(folder, until="2026-12-02")["request_id"].tolist() == ["a"]
    with pytest.raises(DataLoadError, match="not a date"):
        capture.read_window(folder, since="yesterday-ish")
    with pytest.raises(DataLoadError, match="no captured traffic"):
        capture.read_window(tmp_path / "empty")


def test_late_labels_join_by_request_id_and_row(tmp_path):
    log = _log(tmp_path)
    log.record("r1", "1", [{"a": 1}, {"a": 2}], [{"p": 0}, {"p": 1}])
    log.record("r2", "1", [{"a": 3}], [{"p": 0}])
    log.record("r3", "1", [{"a": 4}], [{"p": 1}])
    window = capture.read_window(log.path.parent)
    by_row = pd.DataFrame(
        {"request_id": ["r1", "r1", "r2"], "row": [1, 0, 0], "y": ["b", "a", None]}
    )
    labelled = capture.join_labels(window, by_row, "y")
    assert labelled.to_dict("records") == [{"a": 1, "y": "a"}, {"a": 2, "y": "b"}]
    by_request = pd.DataFrame({"request_id": ["r3"], "y": ["c"]})  # every row of the request
    assert capture.join_labels(window, by_request, "y").to_dict("records") == [{"a": 4, "y": "c"}]
    with pytest.raises(DataLoadError, match="request_id"):
        capture.join_labels(window, pd.DataFrame({"id": [1], "y": [1]}), "y")
    labels = tmp_path / "labels.csv"
    by_row.to_csv(labels, index=False)
    batch = capture.window_batch(log.path.parent, tmp_path / "out", labels=labels, target="y")
    assert pd.read_csv(batch).to_dict("records") == [{"a": 1, "y": "a"}, {"a": 2, "y": "b"}]
    unlabelled = capture.window_batch(log.path.parent, tmp_path / "out")
    assert unlabelled != batch and pd.read_csv(unlabelled)["a"].tolist() == [1, 2, 3, 4]
