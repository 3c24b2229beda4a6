"""Tracking stores honing can use: the file store (no model registry) is refused with one
line naming the rule."""

from pathlib import Path

import pytest

from honing.config.settings import load_env_settings
from honing.exceptions import ConfigError


def test_a_file_store_is_refused_at_the_profile(tmp_path):
    for uri in ("file:///tmp/mlruns", "mlruns"):
        with pytest.raises(ConfigError, match="rule: use a database or a server"):
            load_env_settings(None, root=tmp_path, environ={"MLFLOW_TRACKING_URI": uri})
    assert load_env_settings(None, root=tmp_path).mlflow.tracking_uri.startswith("sqlite:///")


def test_data_path_stays_inside_the_project(tmp_path):
    import yaml

    from honing.config import data_roots, load_config
    from tests.conftest import demo_config_dict

    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "data").mkdir()
    outside = tmp_path / "elsewhere" / "table.csv"
    outside.parent.mkdir()
    outside.write_text("a,b\n1,2\n")

    def config_for(data_path: str) -> Path:
        raw = demo_config_dict()
        raw["data"]["path"] = data_path
        path = project / "configs" / "c.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    inside = project / "data" / "t.csv"
    inside.write_text("a,b\n1,2\n")
    assert load_config(config_for(str(inside)), root=project).data.path == inside
    for escape in ("/etc/passwd", str(outside), "../elsewhere/table.csv"):
        with pytest.raises(ConfigError, match="rule: data must be inside the project"):
            load_config(config_for(escape), root=project)
    link = project / "data" / "shadow.csv"  # a link out of the project is out
    link.symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="resolves to /etc/passwd"):
        load_config(config_for(str(link)), root=project)
    # a folder the environment allows
    roots = data_roots({"HONING_DATA_ROOTS": str(outside.parent)})
    assert load_config(config_for(str(outside)), root=project, extra_roots=roots)


def test_a_command_run_from_the_file_systems_root_or_home_reads_no_file_outside(tmp_path):
    """The working directory widens the project unless it is `/` or the home folder: run
    from there, a config cannot make honing read any file."""
    import yaml

    from honing.config import load_config
    from tests.conftest import demo_config_dict

    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    raw = demo_config_dict()
    raw["data"]["path"] = "/etc/passwd"
    config = project / "configs" / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    for cwd in (Path("/"), Path.home()):
        with pytest.raises(ConfigError, match="rule: data must be inside the project"):
            load_config(config, root=cwd)
    # the folder a user runs from (a repository whose deployment reads a config elsewhere):
    # its files are the project's
    raw["data"]["path"] = "shared/t.csv"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "t.csv").write_text("a,b\n1,2\n")
    config.write_text(yaml.safe_dump(raw))
    assert load_config(config, root=tmp_path).data.path == tmp_path / "shared" / "t.csv"
