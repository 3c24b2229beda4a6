from pathlib import Path

import pytest
import yaml

from honing.config import (
    config_hash,
    load_config,
    load_env_settings,
    parse_config,
    parse_env_settings,
)
from honing.exceptions import ConfigError
from tests.conftest import ROOT, demo_config_dict


def test_shipped_configs_are_valid():
    cfg = load_config(ROOT / "configs" / "churn.yaml", root=ROOT)
    assert cfg.data.target == "churn"
    assert cfg.data.path == ROOT / "data" / "churn.csv"
    assert set(cfg.search.families) == {
        "logistic_regression",
        "extra_trees",
        "random_forest",
        "lightgbm",
        "xgboost",
    }
    # the demo uses the budget-driven defaults `honing init --budget` writes
    assert cfg.time_budget_s == 120 and cfg.search.trials_per_family is None
    assert cfg.search.algorithm == "tpe" and cfg.search.portfolio
    assert cfg.search.ensemble.enabled and cfg.search.ensemble.selection
    for name in ("penguins", "diamonds", "flights"):
        assert load_config(ROOT / "configs" / f"{name}.yaml", root=ROOT).name == name
    env = load_env_settings(ROOT / "configs" / "env" / "local.yaml", root=ROOT, environ={})
    assert env.mlflow.tracking_uri == f"sqlite:///{ROOT / 'mlflow.db'}"
    assert env.ray.address is None


def test_unknown_key_names_file_and_key(tmp_path: Path):
    raw = demo_config_dict()
    raw["search"]["trails_per_family"] = 3  # typo
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load_config(path, root=tmp_path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "search.trails_per_family" in msg
    assert "unknown key" in msg


@pytest.mark.parametrize(
    ("section", "key", "value", "where"),
    [
        ("split", "test_size", 1.5, "split.test_size"),
        ("search", "cv_folds", 1, "search.cv_folds"),
        ("registry", "promotion_margin", -0.1, "registry.promotion_margin"),
        ("evaluation", "thresholds", {"roc_auc": 2.0}, "evaluation.thresholds"),
    ],
)
def test_out_of_range_values_are_rejected(section, key, value, where):
    raw = demo_config_dict()
    raw[section][key] = value
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_config(raw, source=Path("x.yaml"), root=Path("."))


def test_bad_distribution_is_rejected():
    raw = demo_config_dict()
    raw["search"]["families"]["random_forest"]["n_estimators"] = {"randint": [400, 100]}
    with pytest.raises(ConfigError, match="low < high"):
        parse_config(raw, source=Path("x.yaml"), root=Path("."))


def test_an_empty_missing_value_marker_is_refused():
    raw = demo_config_dict()
    raw["data"]["missing_values"] = [".", " "]
    with pytest.raises(ConfigError, match=r"data\.missing_values.*empty marker"):
        parse_config(raw, source=Path("x.yaml"), root=Path("."))


def test_target_cannot_be_dropped():
    raw = demo_config_dict()
    raw["data"]["drop_columns"] = ["churn"]
    with pytest.raises(ConfigError, match="data.target"):
        parse_config(raw, source=Path("x.yaml"), root=Path("."))


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    bad.write_text("name: x\n? [a, b]\n: 1\n")  # a key YAML allows, Python cannot hash
    with pytest.raises(ConfigError, match="bad.yaml: rule: keys are names"):
        load_config(bad)


def test_a_data_path_that_loops_is_one_clear_error(tmp_path: Path):
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    cfg = demo_config_dict()
    cfg["data"]["path"] = "a.csv"
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"loop.yaml: data.path a.csv: rule: a path that"):
        load_config(path, root=tmp_path)


def test_a_suite_that_is_a_folder_or_binary_is_one_clear_error(tmp_path: Path):
    from honing.validation import load_suite

    with pytest.raises(ConfigError, match="this is a folder"):
        load_suite(tmp_path)
    binary = tmp_path / "suite.json"
    binary.write_bytes(b"\x7fELF\xf0\x90\x00\xff")
    with pytest.raises(ConfigError, match="suite.json: expectation suite is not UTF-8"):
        load_suite(binary)


def test_content_hash_ignores_location_and_formatting(tmp_path: Path):
    raw = demo_config_dict()
    a = parse_config(raw, source=Path("a.yaml"), root=tmp_path / "one")
    b = parse_config(
        dict(reversed(list(raw.items()))), source=Path("b.yaml"), root=tmp_path / "two"
    )
    assert a.data.path != b.data.path
    assert a.content_hash == b.content_hash
    raw["split"]["seed"] = 1
    c = parse_config(raw, source=Path("c.yaml"), root=tmp_path)
    assert c.content_hash != a.content_hash
    assert len(config_hash(c)) == 16


def test_environment_overrides_profile(tmp_path: Path):
    env = parse_env_settings(
        {"mlflow": {"tracking_uri": "sqlite:///x.db"}},
        source=Path("env.yaml"),
        root=tmp_path,
        environ={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5001", "RAY_ADDRESS": "127.0.0.1:6379"},
    )
    assert env.mlflow.tracking_uri == "http://127.0.0.1:5001"
    assert env.ray.address == "127.0.0.1:6379"
    assert env.mlflow.artifact_root == (tmp_path / "mlartifacts").resolve().as_uri()
    assert env.ray.storage_path == str((tmp_path / ".honing/ray_results").resolve())


def test_a_relative_artifact_root_stays_relative_to_an_sqlite_store(tmp_path: Path):
    from honing.store_artifacts import local_uri

    def root(mlflow: dict[str, str]) -> str | None:
        env = parse_env_settings({"mlflow": mlflow}, source=Path("e.yaml"), root=tmp_path)
        return env.mlflow.artifact_root

    assert root({"tracking_uri": "sqlite:///mlflow.db"}) == "honing-store:mlartifacts"
    inside = root({"tracking_uri": "sqlite:///mlflow.db", "artifact_root": str(tmp_path / "a")})
    assert inside == "honing-store:a"
    # resolved against wherever the store's folder is: the same folder today
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert local_uri(f"{inside}/1/run/artifacts", store) == (
        (tmp_path / "a" / "1" / "run" / "artifacts").resolve().as_uri()
    )
    # a folder outside the store's folder would not move with it: kept absolute, as are URIs
    # and the roots of other stores
    beside = root({"tracking_uri": "sqlite:///state/mlflow.db", "artifact_root": "art"})
    assert beside == (tmp_path / "art").resolve().as_uri()
    assert root({"tracking_uri": "sqlite:///mlflow.db", "artifact_root": str(tmp_path)}) == (
        tmp_path.resolve().as_uri()
    )
    assert root({"tracking_uri": "sqlite:///m.db", "artifact_root": "s3://b/a"}) == "s3://b/a"
    postgres = root({"tracking_uri": "postgresql://u@h/db", "artifact_root": "art"})
    assert postgres == (tmp_path / "art").resolve().as_uri()
    with pytest.raises(ValueError, match="SQLite tracking store"):
        local_uri("honing-store:art/1", "http://127.0.0.1:5001")


def test_env_profile_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="mlflow.tracking_url"):
        parse_env_settings({"mlflow": {"tracking_url": "x"}}, source=Path("e.yaml"), root=Path("."))


def test_a_project_without_an_env_profile_runs_embedded(tmp_path: Path):
    """A table's own folder (no configs/env/local.yaml) gets the embedded defaults when the
    default profile is asked for; a profile named on purpose must exist."""
    env = load_env_settings("configs/env/local.yaml", root=tmp_path, environ={})
    assert env.mlflow.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert env.ray.address is None and env.ray.storage_path.startswith(str(tmp_path.resolve()))
    with pytest.raises(ConfigError, match="configs/env/cluster.yaml: config file not found"):
        load_env_settings("configs/env/cluster.yaml", root=tmp_path, environ={})
