"""Data versions: the window policy, and batches ingested as DVC versions for real (a DVC
project without git), changing nothing when they are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from honing import data
from honing.config import WindowConfig, load_config
from honing.data import windowing
from honing.exceptions import ConfigError, DataLoadError, DataValidationError
from honing.monitoring import versions
from honing.stages import reproduce
from tests.conftest import ROOT, demo_config_dict

DVC = str(Path(sys.executable).parent / "dvc")


def _table(n: int, start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d"),
            "x": range(n),
            "y": ["a", "b"] * (n // 2),
        }
    )


def test_window_policies_keep_the_newest_rows():
    df = _table(100)
    assert windowing.window(df, WindowConfig()).equals(df)
    assert windowing.window(df, WindowConfig(kind="last_n_rows", rows=30))["x"].tolist() == list(
        range(70, 100)
    )
    month = windowing.window(df, WindowConfig(kind="last_period", period="30D", time_column="date"))
    assert month["date"].min() == "2024-03-11" and len(month) == 30
    with pytest.raises(DataValidationError, match="'x'.*needs dates"):
        windowing.window(df, WindowConfig(kind="last_period", period="30D", time_column="x"))


@pytest.mark.parametrize(
    ("window", "needle"),
    [
        ({"kind": "last_n_rows"}, "data.window.kind last_n_rows needs data.window.rows"),
        ({"kind": "last_period", "period": "30D"}, "needs data.window.period and"),
        ({"kind": "last_period", "period": "soon", "time_column": "d"}, "data.window.period"),
    ],
)
def test_an_incomplete_window_is_a_config_error_naming_the_key(tmp_path, window, needle):
    cfg = demo_config_dict()
    cfg["data"]["window"] = window
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=needle):
        load_config(path, root=ROOT)


@pytest.fixture
def dvc_project(tmp_path: Path, churn_df: pd.DataFrame):
    """A DVC project (no git): 4,000 churn rows tracked by `dvc add`, the rest as batches."""
    (tmp_path / "data").mkdir()
    data.write_table(churn_df.iloc[:4000], tmp_path / "data" / "churn.csv")
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([DVC, "add", "-q", "data/churn.csv"], cwd=tmp_path, check=True)
    cfg = demo_config_dict()
    cfg["data"]["path"] = "data/churn.csv"
    cfg["validation"]["suite"] = str(ROOT / "expectations" / "churn.json")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    data.write_table(churn_df.iloc[4000:4500], tmp_path / "batch.csv")
    return tmp_path, load_config(tmp_path / "c.yaml", root=tmp_path), churn_df


def _pointer(root: Path) -> str:
    return yaml.safe_load((root / "data" / "churn.csv.dvc").read_text())["outs"][0]["md5"]


def test_a_labelled_batch_becomes_a_new_dvc_version_and_the_old_one_stays(dvc_project):
    root, cfg, _ = dvc_project
    before_bytes, before = (root / "data" / "churn.csv").read_bytes(), _pointer(root)
    done = versions.ingest(cfg, root / "batch.csv", repo=root)
    assert done.labelled and done.new and done.version == 1 and done.rows == 500
    assert done.previous_md5 == before and done.total_rows == 4500
    assert _pointer(root) == done.md5 == data.file_md5(root / "data" / "churn.csv") != before
    now = (root / "data" / "churn.csv").read_bytes()
    assert now.startswith(before_bytes)  # the old rows byte for byte, the batch after them
    assert len(data.load_table(root / "data" / "churn.csv")) == 4500
    assert versions.history(root / "data" / "churn.csv")[0]["batch_md5"] == done.batch_md5
    # the version before is still there, by its MD5
    old = versions.cached_copy(root, before)
    assert old is not None and old.read_bytes() == before_bytes
    fetched = reproduce.fetch_data_version(root, "data/churn.csv", before, "", root / "v0.csv")
    assert fetched.read_bytes() == before_bytes
    # the same batch again changes nothing
    again = versions.ingest(cfg, root / "batch.csv", repo=root)
    assert not again.new and again.version == 1 and "nothing changed" in again.line()
    assert (root / "data" / "churn.csv").read_bytes() == now


def test_a_batch_with_labels_still_to_come_keeps_its_labelled_rows(dvc_project):
    """Late labels: the rows that have one make the version, the others are left out and
    named, instead of the whole batch being refused for a blank label."""
    root, cfg, _ = dvc_project
    batch = data.load_table(root / "batch.csv")
    batch.loc[batch.index[:7], "churn"] = None
    data.write_table(batch, root / "late.csv")
    done = versions.ingest(cfg, root / "late.csv", repo=root)
    assert done.labelled and done.rows == 493 and done.total_rows == 4493
    assert any("7 of 500 rows have no label yet" in w for w in done.warnings), done.warnings
    table = data.load_table(root / "data" / "churn.csv")
    assert len(table) == 4493 and table["churn"].notna().all()


def test_a_few_rows_of_a_class_never_seen_are_kept_aside_and_the_batch_goes_on(dvc_project):
    """Seattle's pet licences: cats and dogs for years, then a goat. Two rows of a class the
    label has never held (0.4%, under the rarest class's least share, 1%) are left out of
    the version and kept in a DVC-tracked file, named in a warning; the other 498 rows make
    the version. A class in 5% of the rows is a changed labelling: the batch is refused."""
    root, cfg, _ = dvc_project
    batch = data.load_table(root / "batch.csv")
    batch.loc[batch.index[:2], "churn"] = "goat"
    data.write_table(batch, root / "goats.csv")
    done = versions.ingest(cfg, root / "goats.csv", repo=root)
    assert done.rows == 498 and done.total_rows == 4498
    assert done.held is not None and done.held.startswith("data/held/goats-")
    kept = data.load_table(root / done.held)
    assert len(kept) == 2 and set(kept["churn"]) == {"goat"}
    assert (root / (done.held + ".dvc")).is_file()
    note = next(w for w in done.warnings if "never held" in w)
    assert "'goat' 2" in note and done.held in note and "churn.json" in note
    assert "goat" not in set(data.load_table(root / "data" / "churn.csv")["churn"])
    assert versions.history(root / "data" / "churn.csv")[0]["held"] == done.held

    batch.loc[batch.index[:25], "churn"] = "goat"
    data.write_table(batch, root / "relabelled.csv")
    before = (root / "data" / "churn.csv").read_bytes()
    with pytest.raises(DataValidationError, match="goat"):
        versions.ingest(cfg, root / "relabelled.csv", repo=root)
    assert (root / "data" / "churn.csv").read_bytes() == before
    assert sorted(p.name for p in (root / "data" / "held").glob("*.csv")) == [Path(done.held).name]


def test_a_new_class_of_a_multiclass_label_is_taken_in_where_it_can_be_learned(tmp_path):
    """Rodents trapped year by year: a species first caught in 1995 is 7 rows of 1,180 and
    a third of the catch two years later. With three classes or more, a new class that
    reaches the rarest class's least share in the table the batch makes is taken into the
    label's value set (the suite file says so) and its rows into the version; a class under
    it is held back, like a binary label's third class."""
    from honing.validation import load_suite, save_suite
    from honing.validation.profiling import profile_suite

    (tmp_path / "data").mkdir()
    first = pd.DataFrame({"weight": range(300), "species": ["DM", "DO", "PP"] * 100})
    data.write_table(first, tmp_path / "data" / "traps.csv")
    suite_path = tmp_path / "traps.json"
    save_suite(profile_suite(first, name="t", target="species", task="classification"), suite_path)
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([DVC, "add", "-q", "data/traps.csv"], cwd=tmp_path, check=True)
    raw = demo_config_dict()
    raw["data"] = {"path": "data/traps.csv", "target": "species"}
    raw["validation"] = {"suite": str(suite_path), "quality": {"min_minority_fraction": 0.01}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_config(tmp_path / "c.yaml", root=tmp_path)
    batch = pd.DataFrame({"weight": range(300, 600), "species": ["DM", "DO", "PP"] * 100})
    batch.loc[:19, "species"] = "PB"  # 20 of 600 rows: 3.3%
    batch.loc[20:21, "species"] = "RO"  # 2 of 600: 0.33%
    data.write_table(batch, tmp_path / "1995.csv")
    done = versions.ingest(cfg, tmp_path / "1995.csv", repo=tmp_path)
    assert done.rows == 298 and done.total_rows == 598
    table = data.load_table(tmp_path / "data" / "traps.csv")
    assert (table["species"] == "PB").sum() == 20 and "RO" not in set(table["species"])
    assert set(data.load_table(tmp_path / done.held)["species"]) == {"RO"}
    assert any("'PB' (20 rows)" in change for change in done.suite_widened), done.suite_widened
    labels = next(
        e for e in load_suite(suite_path)["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "species"
    )  # fmt: skip
    assert labels["severity"] == "critical" and "PB" in labels["kwargs"]["value_set"]
    assert "RO" not in labels["kwargs"]["value_set"]


def test_an_unlabelled_batch_is_stored_for_monitoring(dvc_project):
    root, cfg, churn = dvc_project
    data.write_table(churn.iloc[4000:4200].drop(columns=["churn"]), root / "new.csv")
    table_md5 = data.file_md5(root / "data" / "churn.csv")
    done = versions.ingest(cfg, root / "new.csv", repo=root)
    assert not done.labelled and done.stored.startswith("data/batches/new-")
    assert (root / done.stored).is_file() and (root / (done.stored + ".dvc")).is_file()
    assert data.file_md5(root / "data" / "churn.csv") == table_md5


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda df: df.drop(columns=["tenure"]), "column 'tenure' of .*churn.csv is missing"),
        (lambda df: df.assign(extra=1), "column 'extra' is not in"),
        (lambda df: df.assign(churn="maybe"), "churn"),
    ],
)
def test_a_bad_batch_is_refused_and_nothing_changes(dvc_project, mutate, needle):
    root, cfg, _ = dvc_project
    data.write_table(mutate(data.load_table(root / "batch.csv")), root / "bad.csv", overwrite=True)
    before, pointer = (root / "data" / "churn.csv").read_bytes(), _pointer(root)
    with pytest.raises(DataValidationError, match=needle):
        versions.ingest(cfg, root / "bad.csv", repo=root)
    assert (root / "data" / "churn.csv").read_bytes() == before and _pointer(root) == pointer
    assert versions.history(root / "data" / "churn.csv") == []


def test_a_batch_of_a_world_that_moved_is_taken_in_and_the_suite_widens(dvc_project):
    """The suite `init` writes, then a batch with what new data brings: a new month, a
    count past its old maximum, a category not seen yet. Accepted (statistics warn, they do
    not refuse), recorded with the version, and the suite's statistics widened to take it in;
    a broken contract (the label's values) is still refused."""
    from honing import validation
    from honing.validation import profiling

    root, cfg, churn = dvc_project
    table = data.load_table(root / "data" / "churn.csv")
    table["month"] = 1 + table.index % 6  # a time-like column: no range
    data.write_table(table, root / "data" / "churn.csv", overwrite=True)
    subprocess.run([DVC, "add", "-q", "data/churn.csv"], cwd=root, check=True)
    suite_path = root / "suite.json"
    validation.save_suite(
        profiling.profile_suite(table, name="churn", target="churn", task="classification"),
        suite_path,
    )
    cfg = cfg.model_copy(
        update={"validation": cfg.validation.model_copy(update={"suite": suite_path})}
    )
    batch = churn.iloc[4000:4500].copy()
    batch["month"] = 7
    batch["tenure"] = batch["tenure"] + 100  # past the old maximum, with its margin
    batch.loc[batch.index[:20], "contract"] = "Ten year"  # a category not seen yet
    data.write_table(batch, root / "moved.csv")
    done = versions.ingest(cfg, root / "moved.csv", repo=root)
    assert done.labelled and done.version == 1
    assert any(w.startswith("tenure: expect_column_values_to_be_between") for w in done.warnings)
    assert any(w.startswith("contract: expect_column_values_to_be_in_set") for w in done.warnings)
    assert not any(w.startswith("month:") for w in done.warnings)
    recorded = versions.history(root / "data" / "churn.csv")[0]
    assert recorded["suite_widened"] == done.suite_widened and len(done.suite_widened) == 2
    # the widened suite takes the whole table in without a warning
    widened = validation.load_suite(suite_path)
    report = validation.validate(
        data.load_table(root / "data" / "churn.csv"), widened, source="t", rules=None
    )
    assert report.success, report.table()
    # contracts still refuse
    data.write_table(batch.assign(churn="maybe"), root / "bad.csv")
    with pytest.raises(DataValidationError, match="churn"):
        versions.ingest(cfg, root / "bad.csv", repo=root)


def test_a_stage_output_is_committed_and_a_project_without_dvc_is_refused(dvc_project):
    root, cfg, churn = dvc_project
    data.write_table(churn.iloc[4500:4700], root / "more.csv")
    subprocess.run([DVC, "remove", "-q", "data/churn.csv.dvc"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"make": {"cmd": "true", "outs": ["data/churn.csv"]}}})
    )
    subprocess.run([DVC, "commit", "-q", "-f", "make"], cwd=root, check=True)
    done = versions.ingest(cfg, root / "batch.csv", repo=root)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert lock["stages"]["make"]["outs"][0]["md5"] == done.md5
    with (
        tempfile.TemporaryDirectory() as elsewhere,
        pytest.raises(DataLoadError, match="not a DVC project"),
    ):
        versions.ingest(cfg, root / "more.csv", repo=Path(elsewhere))
    assert (
        json.loads(versions.history_path(root / "data" / "churn.csv").read_text())["version"] == 1
    )


def test_concurrent_ingests_record_one_version_each(dvc_project):
    """Three `ingest`s at once: one at a time, each on the version before it."""
    root, _, churn_df = dvc_project
    for i in range(3):
        data.write_table(churn_df.iloc[4500 + 100 * i : 4600 + 100 * i], root / f"b{i}.csv")
    code = (
        "import sys; from pathlib import Path; from honing.monitoring import versions; "
        "from honing.config import load_config; root = Path(sys.argv[1]); "
        "versions.ingest(load_config(root / 'c.yaml', root=root), root / sys.argv[2], repo=root)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(root), f"b{i}.csv"], cwd=root,
                         stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]  # fmt: skip
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(e[-1500:] for e in errors)
    recorded = versions.history(root / "data" / "churn.csv")
    assert [v["version"] for v in recorded] == [1, 2, 3]
    assert [v["total_rows"] for v in recorded] == [4100, 4200, 4300]
    assert len({v["md5"] for v in recorded}) == 3
    assert [v["previous_md5"] for v in recorded[1:]] == [v["md5"] for v in recorded[:2]]
    assert recorded[-1]["md5"] == data.file_md5(root / "data" / "churn.csv") == _pointer(root)
    assert len(data.load_table(root / "data" / "churn.csv")) == 4300


def test_an_append_cut_short_is_no_version_and_the_next_ingest_mends_it(dvc_project):
    root, cfg, _ = dvc_project
    path = versions.history_path(root / "data" / "churn.csv")
    path.write_text('{"batch_md5": "x", "version": 1')  # killed mid-write, no newline
    assert versions.history(root / "data" / "churn.csv") == []
    done = versions.ingest(cfg, root / "batch.csv", repo=root)
    assert done.version == 1
    assert [v["version"] for v in versions.history(root / "data" / "churn.csv")] == [1]
    path.write_text('{"broken\n' + path.read_text())  # a bad record before the last
    with pytest.raises(DataLoadError, match=r"churn.csv.history.jsonl: line 1 is not a JSON"):
        versions.history(root / "data" / "churn.csv")
