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
