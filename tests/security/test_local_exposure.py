"""What another local user can reach: the files a command creates are the user's alone
(whatever the umask), and a run's private Prefect API answers only the run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import untracked_env


def test_files_a_command_creates_are_private_whatever_the_umask(tmp_path):
    """The `honing` command (its entry point sets the umask, for itself and what it starts;
    this test process keeps its own)."""
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=60), "y": rng.choice(["a", "b"], size=60)}).to_csv(
        tmp_path / "t.csv", index=False
    )
    honing = str(Path(sys.executable).parent / "honing")
    done = subprocess.run(
        [honing, "init", "t.csv", "--target", "y"], cwd=tmp_path, umask=0o022,
        capture_output=True, text=True, timeout=300,
        env=untracked_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for path in (tmp_path / "configs", tmp_path / "expectations"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        for f in path.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE((tmp_path / "mlflow.db").stat().st_mode) == 0o600  # init makes it


def _get(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    if auth:
        import base64

        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.integration
def test_the_private_prefect_api_answers_only_the_run(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING

    from honing_flows.api_server import private_api

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / ".prefect")
    with private_api(env, Path(tmp_path / "api.log")) as url:
        assert url is not None
        # another local user: the port answers, the API does not
        assert _get(f"{url}/flows/filter") == 401
        assert _get(f"{url}/flows/filter", "honing:guess") == 401
        # the run itself, with the secret it was started with
        secret = PREFECT_API_AUTH_STRING.value()
        secret = getattr(secret, "get_secret_value", lambda: secret)()
        assert secret.startswith("honing:") and _get(f"{url}/flows/filter", secret) == 200
        with get_client(sync_client=True) as client:  # Prefect's own client, as the run
            assert isinstance(client.read_flows(), list)
