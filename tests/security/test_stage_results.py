"""Reused stage results are honing's own sealed records: a record is reused only when its
HMAC under the project's secret matches its key and bytes, and then loads with honing's
reviewed types only. A rewritten record (a pickle payload, a record moved from another key,
a record naming another serializer) is refused and the stage runs again; nothing in it runs.
The folder and its files are private whatever the umask."""

import collections
import os
import pickle
import stat

import numpy as np
import pytest

from honing.config import PipelineConfig
from honing.lineage import Lineage
from honing.modeling.training import ModelSpec
from honing.models import artifacts
from honing.search import SearchResult, TrialResult
from honing.stages import cache
from honing.stages.cache import StageStore
from tests.conftest import demo_config_dict


def _search(score: float = 0.81) -> SearchResult:
    trial = TrialResult(
        "t0",
        ModelSpec("lightgbm", {"n_estimators": 50}),
        score,
        0.01,
        [0.8, 0.82],
        1.5,
        oof=np.array([0.2, 0.7]),
        oof_rows=np.array([0, 1]),
        rung_scores=((1, 0.8, 0.7), (2, 0.81, 1.5)),
    )
    return SearchResult("roc_auc", [trial], wall_s=3.0)


@pytest.fixture
def cfg() -> PipelineConfig:
    return PipelineConfig.model_validate(demo_config_dict())


def _lineage(dirty: bool = False) -> Lineage:
    return Lineage(
        data_path="data/churn.csv",
        data_md5="0" * 32,
        git_commit="a" * 40,
        git_dirty=dirty,
        config_hash="c" * 16,
        config_name="churn",
        flow_run_id="none",
    )


class Marker:
    """What an attacker's record would run when unpickled."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def _store(tmp_path) -> StageStore:
    return StageStore.for_project(str(tmp_path), read=True, write=True)


def _computed(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_a_result_is_kept_sealed_and_reused(tmp_path, cfg):
    store = _store(tmp_path)
    compute, calls = _computed(_search())
    first = store.reuse("search", cfg, _lineage(), compute)
    again = store.reuse("search", cfg, _lineage(), compute)
    assert calls == [1] and not first.reused and again.reused
    assert again.value.best.score == 0.81 and again.value.best.spec.params == {"n_estimators": 50}
    assert again.value.trials[0].rung_scores == ((1, 0.8, 0.7), (2, 0.81, 1.5))
    assert np.array_equal(again.value.trials[0].oof, [0.2, 0.7])
    assert "search: reused the result kept in" in again.log_lines()[0]
    # read off (--force, a fresh search, a reproduction): computed again
    forced = StageStore.for_project(str(tmp_path), read=False, write=True)
    assert not forced.reuse("search", cfg, _lineage(), compute).reused and len(calls) == 2


def test_nothing_is_kept_for_code_with_uncommitted_changes(tmp_path, cfg):
    store = _store(tmp_path)
    compute, calls = _computed(_search())
    store.reuse("search", cfg, _lineage(dirty=True), compute)
    store.reuse("search", cfg, _lineage(dirty=True), compute)
    assert calls == [1, 1]
    assert not list((tmp_path / ".honing" / "results").glob("*.result"))


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_folder_secret_and_records_are_private_whatever_the_umask(tmp_path, cfg, umask):
    old = os.umask(umask)
    try:
        _store(tmp_path).reuse("search", cfg, _lineage(), lambda: _search())
    finally:
        os.umask(old)
    folder = tmp_path / ".honing" / "results"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert {f.suffix for f in files} == {".result", ""} and len(files) == 2
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def _record(tmp_path) -> os.PathLike:
    (record,) = (tmp_path / ".honing" / "results").glob("*.result")
    return record


def test_a_record_rewritten_with_a_pickle_is_refused_and_never_runs(tmp_path, cfg):
    store = _store(tmp_path)
    store.reuse("search", cfg, _lineage(), lambda: _search())
    record = _record(tmp_path)
    marker = tmp_path / "pwned"
    Marker.path = str(marker)
    head = record.read_bytes().split(b"\n", 2)
    # the attack on Prefect's records: same key, a pickled payload, the old seal kept
    record.write_bytes(head[0] + b"\n" + head[1] + b"\n" + pickle.dumps(Marker()))
    compute, calls = _computed(_search(0.7))
    got = store.reuse("search", cfg, _lineage(), compute)
    assert not got.reused and calls == [1] and got.value.best.score == 0.7
    assert not marker.exists()


def test_a_record_that_names_its_own_serializer_is_not_read(tmp_path, cfg):
    """What Prefect would have honoured: a JSON record naming ``pickle``."""
    store = _store(tmp_path)
    store.reuse("search", cfg, _lineage(), lambda: _search())
    record = _record(tmp_path)
    Marker.path = str(tmp_path / "pwned")
    record.write_text(
        '{"metadata": {"serializer": {"type": "pickle"}}, "result": "'
        + pickle.dumps(Marker()).hex()
        + '"}'
    )
    assert not store.reuse("search", cfg, _lineage(), lambda: _search(0.7)).reused
    assert not (tmp_path / "pwned").exists()


def test_a_record_moved_from_another_key_is_refused(tmp_path, cfg):
    store = _store(tmp_path)
    store.reuse("search", cfg, _lineage(), lambda: _search(0.9))
    store.reuse("choose", cfg, _lineage(), lambda: _search(0.5))
    folder = tmp_path / ".honing" / "results"
    (search,) = folder.glob("*-search-*.result")
    (choose,) = folder.glob("*-choose-*.result")
    search.write_bytes(choose.read_bytes())  # a valid record, sealed for the other key
    assert not store.reuse("search", cfg, _lineage(), lambda: _search(0.7)).reused


def test_a_sealed_record_with_an_unreviewed_type_is_still_refused(tmp_path, cfg):
    """Even a record sealed with the project's secret loads with reviewed types only."""
    store = _store(tmp_path)
    store.reuse("search", cfg, _lineage(), lambda: _search())
    record = _record(tmp_path)
    folder = record.parent
    secret = cache.project_secret(folder)
    key = record.name.removesuffix(cache.SUFFIX)
    payload = artifacts.skops_bytes(collections.Counter(a=1))
    record.write_bytes(cache.MAGIC + cache.seal(secret, key, payload) + b"\n" + payload)
    assert not store.reuse("search", cfg, _lineage(), lambda: _search(0.7)).reused


def test_a_secret_open_to_others_is_not_trusted(tmp_path, cfg):
    store = _store(tmp_path)
    store.reuse("search", cfg, _lineage(), lambda: _search())
    secret = tmp_path / ".honing" / "results" / cache.SECRET
    secret.chmod(0o644)  # another local user could read it and forge records
    compute, calls = _computed(_search(0.7))
    assert not store.reuse("search", cfg, _lineage(), compute).reused and calls == [1]
