"""Tasks called through ``.fn``: the wrapped library call, without a Prefect run."""

import pytest

from honing.exceptions import DataValidationError
from honing.validation import QualityRules
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import registry as registry_tasks
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import train as train_tasks

pytestmark = pytest.mark.integration


def test_config_and_data_tasks(project):
    cfg = setup_tasks.load_pipeline_config.fn(str(project["config"]))
    df = data_tasks.load_table.fn(cfg.data.path)
    assert len(df) == 7043
    assert len(data_tasks.file_md5.fn(cfg.data.path)) == 32
    suite = data_tasks.load_suite.fn(cfg.validation.suite)
    rules = QualityRules.from_config(cfg)
    report = data_tasks.validate_data.fn(df, suite, "churn.csv", rules)
    assert report.success
    data_tasks.validation_gate.fn(report)
    bad = data_tasks.validate_data.fn(df.drop(columns=["contract"]), suite, "bad.csv", rules)
    with pytest.raises(DataValidationError, match="contract"):
        data_tasks.validation_gate.fn(bad)


def test_training_tasks(project):
    cfg = setup_tasks.load_pipeline_config.fn(str(project["config"]))
    df = data_tasks.load_table.fn(cfg.data.path).sample(800, random_state=0)
    cleaned, report = data_tasks.clean.fn(df, "churn", True, True)
    assert report.rows_out == len(cleaned)
    split, classes = data_tasks.split_data.fn(cleaned, "churn", "Yes", [], 0.25, 0, cfg.task, None)
    setup = train_tasks.training_setup.fn(cfg, split.X_train)
    assert setup.columns == data_tasks.infer_columns.fn(split.X_train, cfg.features)
    from honing.training import ModelSpec

    trained = train_tasks.train_model.fn(
        split.X_train, split.y_train, ModelSpec("logistic_regression", {}), setup
    )
    from honing.decision import fit_decision

    fit = fit_decision(split.y_train, None, classes, cfg.decision, metric="roc_auc", seed=0)
    evaluation = train_tasks.evaluate.fn(
        trained.model, split.X_test, split.y_test, classes, fit.rule
    )
    assert evaluation.metrics["roc_auc"] > 0.7
    train_tasks.quality_gate.fn(evaluation, {"roc_auc": 0.5}, None, cfg.evaluation.slice_gate)
    decision = registry_tasks.champion_gate.fn(
        evaluation, trained.model, fit.rule, split.X_test, split.y_test, None, cfg.registry, 0,
        cfg.evaluation,
    )  # fmt: skip
    assert decision.promote
    assert set(
        train_tasks.plot_figures.fn(trained.model, split.X_test, split.y_test, evaluation, fit)
    ) >= {"roc_curve.png"}


def test_io_tasks_retry_and_pure_tasks_do_not():
    assert data_tasks.load_table.retries == 3
    assert registry_tasks.score_champion.retries == 3
    assert data_tasks.validation_gate.retries == 0
    assert registry_tasks.register_version.retries == 3  # idempotent per run id


def test_env_task_reads_the_process_environment(project, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    settings = setup_tasks.load_env_settings.fn(str(project["env"]))
    assert settings.ray.address == "127.0.0.1:6390"
    # the address came from the variable: without it, the profile's own value returns
    monkeypatch.delenv("RAY_ADDRESS")
    from_file = setup_tasks.load_env_settings.fn(str(project["env"]))
    assert from_file.ray.address != "127.0.0.1:6390"
    assert from_file.mlflow == settings.mlflow  # the variable touched nothing else
