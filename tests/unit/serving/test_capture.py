"""The capture log (`honing.serving.capture`): what a server keeps of its traffic, read back as a
batch, with late labels joined by request id."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from honing.exceptions import DataLoadError
from honing.serving import capture


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


def test_answers_given_live_become_the_gates_evidence_for_the_pair_that_gave_most(tmp_path):
    """A labelled window of a shadowed server keeps both answers beside the batch; the
    evidence is the rows both versions answered, for the pair of versions that answered
    most (the champion moved to v3 for one request), labels coded in the classes' order."""
    from honing import data
    from honing.monitoring import shadow

    served = _log(tmp_path)
    shadowed = capture.CaptureLog(capture.CaptureConfig(tmp_path / "cap" / capture.SHADOW))

    def said(p: float) -> dict:
        return {"prediction": "Yes" if p >= 0.5 else "No", "probability": p,
                "probability_No": 1 - p, "probability_Yes": p, "threshold": 0.5}  # fmt: skip

    champion = {"r0": "1", "r1": "1", "r2": "1", "r3": "3", "r4": "1"}
    for k, (rid, version) in enumerate(champion.items()):
        rows = [{"tenure": k, "contract": "Monthly"}, {"tenure": k + 10, "contract": "Yearly"}]
        served.record(rid, version, rows, [said(0.2 + 0.1 * k), said(0.7)])
        if rid != "r4":  # the shadow lagged behind on the last request
            shadowed.record(rid, "2", rows, [said(0.6), said(0.3 + 0.1 * k)])
    labels = pd.DataFrame(
        {"request_id": [r for r in champion for _ in range(2)], "row": [0, 1] * 5,
         "churn": ["Yes", "No", "No", "No", "Yes", "Yes", "No", "Yes", "No", None]}
    )  # fmt: skip
    labels.to_csv(tmp_path / "labels.csv", index=False)
    batch = capture.window_batch(
        tmp_path / "cap", tmp_path / "out", labels=tmp_path / "labels.csv", target="churn"
    )
    beside = pd.read_csv(capture.answers_file(batch))
    assert len(beside) == len(pd.read_csv(batch)) == 9  # r4's second row has no label
    assert beside["shadow_version"].isna().sum() == 1  # r4's first row: no shadow answer
    codes, known = data.labelled_rows(pd.read_csv(batch)["churn"], ["No", "Yes"])
    live = shadow.recorded(batch, codes, known, ["No", "Yes"])
    assert live is not None and (live.champion, live.challenger) == ("1", "2")
    evidence = live.evidence  # r0, r1, r2: six rows
    assert evidence.y.tolist() == [1, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(evidence.champion.values[:, 1], [0.2, 0.7, 0.3, 0.7, 0.4, 0.7])
    np.testing.assert_allclose(evidence.challenger.values[:, 1], [0.6, 0.3, 0.6, 0.4, 0.6, 0.5])
    assert evidence.challenger.codes.tolist() == [1, 0, 1, 0, 1, 1]
    # a batch written without a shadow, or whose rows are not the answers' rows: none
    assert shadow.recorded(batch, codes[:-1], known[:-1], ["No", "Yes"]) is None
    plain = capture.window_batch(tmp_path / "cap", tmp_path / "out")
    assert not capture.answers_file(plain).exists()


def _write_many(folder: str, who: str) -> None:
    log = capture.CaptureLog(capture.CaptureConfig(Path(folder), max_bytes=20_000))
    for i in range(300):
        log.record(f"{who}-{i}", "1", [{"a": i, "text": "x" * 40}] * 2, [{"p": 0.5}] * 2)


def test_two_processes_share_a_capture_without_a_torn_line_or_a_lost_row(tmp_path):
    """A server's workers append to one folder, and close its file past the bound, in turn."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(str(tmp_path), w)) for w in ("a", "b")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0, 0]
    files = capture.capture_files(tmp_path)
    assert len(files) > 2  # the 20 KB bound closed files as both wrote
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert len(lines) == 2 * 300 * 2
    assert {(x["request_id"], x["row"]) for x in lines} == {
        (f"{w}-{i}", r) for w in ("a", "b") for i in range(300) for r in (0, 1)
    }
