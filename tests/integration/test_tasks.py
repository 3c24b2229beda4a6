"""The stage tasks called through ``.fn``: the wrapped library call, without a Prefect run,
on a real MLflow store in the test's project folder."""

import inspect
import os
from dataclasses import replace

import pytest

from honing.config import RaySettings
from honing.exceptions import DataValidationError, ModelQualityError
from honing.lineage import Lineage
from honing.modeling.training import ModelSpec
from honing.search.ensembles import EnsembleDecision
from honing.stages.cache import StageStore
from honing.stages.context import RunContext
from honing_flows.tasks import data as data_tasks
from honing_flows.tasks import registry as registry_tasks
from honing_flows.tasks import setup as setup_tasks
from honing_flows.tasks import stages

pytestmark = pytest.mark.integration


def _lineage(md5: str = "0" * 32) -> Lineage:
    return Lineage("data/churn.csv", md5, "abc1234", False, "cfg", "churn", "none")


def test_start_and_validate_tasks_report_and_log_then_the_gate_decides(project, monkeypatch):
    monkeypatch.chdir(project["root"])
    started = stages.start.fn(str(project["config"]), str(project["env"]), "churn test", "f1")
    assert started.cfg.name == "churn" and started.run.run_id
    validated = stages.validate.fn(
        cfg=started.cfg,
        run=started.run,
        repo=str(project["root"]),
        config_path=str(project["config"]),
        flow_run_id="f1",
    )
    assert len(validated.raw) == 7043 and validated.report.success
    assert len(validated.lineage.data_md5) == 32

    from mlflow import MlflowClient

    client = MlflowClient()
    tags = client.get_run(started.run.run_id).data.tags
    assert tags["honing.data_md5"] == validated.lineage.data_md5
    stages.validation_gate.fn(validated=validated)
    # a table that breaks the suite: the report is logged, then the gate refuses it
    bad = project["root"] / "data" / "churn.csv"
    validated.raw.drop(columns=["contract"]).to_csv(bad, index=False)
    again = stages.start.fn(str(project["config"]), str(project["env"]), "churn bad", "f2")
    rejected = stages.validate.fn(
        cfg=again.cfg,
        run=again.run,
        repo=str(project["root"]),
        config_path=str(project["config"]),
        flow_run_id="f2",
    )
    assert not rejected.report.success
    with pytest.raises(DataValidationError, match="contract"):
        stages.validation_gate.fn(validated=rejected)
    artifacts = [a.path for a in client.list_artifacts(again.run.run_id, "validation")]
    assert artifacts == ["validation/report.json"]
    stages.fail.fn(again.run, "validation", "the table breaks its suite")
    failed = client.get_run(again.run.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["honing.error"] == "the table breaks its suite"


def test_fit_tasks_prepare_refit_evaluate_explain_and_gate(
    explained_project, project, mlflow_store
):
    cfg = setup_tasks.load_pipeline_config.fn(str(project["config"]))
    raw = data_tasks.load_table.fn(cfg.data.path).sample(800, random_state=0)
    prepared = stages.prepare.fn(cfg=cfg, raw=raw, lineage=_lineage(), elapsed_s=0.0)
    assert len(prepared.split.X_train) + len(prepared.split.X_test) == prepared.cleaning.rows_out
    assert prepared.setup.columns == data_tasks.infer_columns.fn(
        prepared.split.X_train, cfg.features
    )
    choice = EnsembleDecision(ModelSpec("logistic_regression", {}), "test", {})
    ctx = RunContext(cfg=cfg, ray=RaySettings(), experiment_name="t", store=StageStore.off())
    refit = stages.refit.fn(ctx=ctx, prepared=prepared, choice=choice)
    evaluated = stages.evaluate.fn(ctx=ctx, prepared=prepared, refit=refit, left_s=None)
    assert evaluated.report.metrics["roc_auc"] > 0.7
    stages.quality_gate.fn(ctx=ctx, prepared=prepared, evaluated=evaluated)
    strict = cfg.model_copy(
        update={"evaluation": cfg.evaluation.model_copy(update={"thresholds": {"roc_auc": 0.99}})}
    )
    with pytest.raises(ModelQualityError, match="roc_auc"):
        stages.quality_gate.fn(ctx=replace(ctx, cfg=strict), prepared=prepared, evaluated=evaluated)
    explained = stages.explain.fn(ctx=ctx, prepared=prepared, refit=refit, trims=evaluated.trims)
    assert explained.importances and explained.importances[0].method == "permutation"


def test_io_tasks_retry_and_pure_tasks_do_not():
    assert data_tasks.load_table.retries == 3
    assert registry_tasks.score_champion.retries == 3
    assert stages.validate.retries == 3
    assert stages.quality_gate.retries == 0
    assert stages.validation_gate.retries == 0
    assert stages.register.retries == 3  # idempotent per run id
    assert stages.search.retries == 0
    # a task made from a plain step takes the step's parameters, less its log
    assert stages.search.name == "search"
    assert list(inspect.signature(stages.search.fn).parameters) == ["ctx", "prepared"]


def test_env_task_reads_the_process_environment(project, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    settings = setup_tasks.load_env_settings.fn(str(project["env"]))
    assert settings.ray.address == "127.0.0.1:6390"
    # the address came from the variable: without it, the profile's own value returns
    monkeypatch.delenv("RAY_ADDRESS")
    from_file = setup_tasks.load_env_settings.fn(str(project["env"]))
    assert from_file.ray.address != "127.0.0.1:6390"
    assert from_file.mlflow == settings.mlflow  # the variable touched nothing else
    assert os.environ.get("RAY_ADDRESS") is None
