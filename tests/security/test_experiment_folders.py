"""Tune experiment folders: one run per folder at a time, and nothing restored from a folder
someone else could have written (restoring unpickles its tuner.pkl)."""

import os
from pathlib import Path

import pytest

from honing.search import experiments


def test_a_second_run_with_the_same_name_gets_its_own_folder(tmp_path):
    with experiments.claim(str(tmp_path), "search-abc") as first:
        assert first == "search-abc"
        with experiments.claim(str(tmp_path), "search-abc") as second:
            assert second.startswith("search-abc-") and second != first
    with experiments.claim(str(tmp_path), "search-abc") as again:  # released: reusable
        assert again == "search-abc"
    assert oct((tmp_path / ".search-abc.lock").stat().st_mode & 0o777) == "0o600"


def test_only_folders_this_user_wrote_alone_are_restored(tmp_path):
    folder = tmp_path / "search-abc"
    (folder / "trial_1").mkdir(parents=True)
    state = folder / "tuner.pkl"
    state.write_bytes(b"state")
    os.chmod(folder, 0o700)
    os.chmod(state, 0o600)
    assert experiments.untrusted(str(folder)) is None
    os.chmod(state, 0o666)
    assert "writable by other users" in experiments.untrusted(str(folder))
    os.chmod(state, 0o600)
    link = folder / "trial_1" / "params.pkl"
    link.symlink_to(tmp_path / "elsewhere.pkl")
    assert "symbolic link" in experiments.untrusted(str(folder))
    link.unlink()
    if os.getuid() == 0:  # root can hand the file to another user, as a planted file would be
        os.chown(state, 65534, 65534)
        assert "another user" in experiments.untrusted(str(folder))
    assert experiments.untrusted("s3://bucket/search") is None  # remote: the store's own ACLs


@pytest.mark.parametrize("storage", ["s3://bucket/ray"])
def test_remote_storage_is_not_locked_here(storage):
    with experiments.claim(storage, "search-x") as name:
        assert name == "search-x"
    assert not Path("s3:").exists()


def test_a_state_cut_while_it_was_saved_is_not_restored(tmp_path):
    """A run killed between Tune's save of its experiment state and its searcher's leaves
    the second empty: the rerun says so and searches anew, with every trial, instead of
    restoring trials under a searcher that starts over."""
    import pandas as pd
    from sklearn.datasets import make_classification

    from honing.config import FeaturesConfig, RaySettings, SearchConfig
    from honing.modeling.features import FeatureColumns
    from honing.modeling.training import TrainingSetup
    from honing.search import run_search

    X, y = make_classification(300, 5, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    setup = TrainingSetup(
        "classification", FeatureColumns(list(df.columns), []), FeaturesConfig(), 0, "roc_auc", 3
    )
    cfg = SearchConfig(
        families={"logistic_regression": {"C": {"loguniform": [0.1, 1.0]}}},
        trials_per_family=2, cv_folds=3, seed=0, executor="ray",
    )  # fmt: skip
    settings = RaySettings(num_cpus=2, storage_path=str(tmp_path))

    def search(said: list[str]):
        return run_search(
            df, y, cfg=cfg, setup=setup, ray_settings=settings, experiment_name="s",
            progress=said.append,
        )  # fmt: skip

    assert len(search([]).completed) == 2
    assert experiments.cut_short(str(tmp_path / "s")) is None  # saved whole
    (searcher,) = (tmp_path / "s").glob("basic-variant-state-*.json")
    searcher.write_bytes(b"")  # the kill came while it was written
    assert "was cut while it was written" in experiments.cut_short(str(tmp_path / "s"))
    said: list[str] = []
    again = search(said)
    assert any("not restoring the search" in s and searcher.name in s for s in said), said
    assert len(again.completed) == 2 and not any(t.restored for t in again.trials)
