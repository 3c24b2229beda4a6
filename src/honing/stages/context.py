"""What the stages of one run read besides their inputs, as one bundle, and where the run
lives in MLflow."""

from __future__ import annotations

from dataclasses import dataclass

from honing.config import PipelineConfig, RaySettings
from honing.lineage import Lineage
from honing.search.experiments import search_name
from honing.stages.cache import StageStore


@dataclass(frozen=True)
class RunRef:
    """Where a run lives in MLflow."""

    run_id: str
    experiment_id: str
    tracking_uri: str


@dataclass(frozen=True)
class RunContext:
    """The run's config, where its trials run (``ray``), the name of its search's Tune
    experiment, the store of results its expensive stages reuse and keep, and its MLflow run
    (None for a reproduction, which records nothing). Made once the data's lineage is known
    (the experiment's name and what may be reused depend on it) and handed to every stage
    after the preparation."""

    cfg: PipelineConfig
    ray: RaySettings
    experiment_name: str
    store: StageStore
    run: RunRef | None = None

    @classmethod
    def for_run(
        cls,
        cfg: PipelineConfig,
        ray: RaySettings,
        store: StageStore,
        *,
        run: RunRef | None = None,
        lineage: Lineage | None = None,
        resume: bool = False,
    ) -> RunContext:
        """The context of one run of ``cfg``. Its search's Tune experiment is a fresh one,
        or, with ``resume``, the one named by the config, the data and the commit of
        ``lineage``, so that an interrupted run restores its finished trials
        (:func:`honing.search.experiments.search_name`)."""
        name = search_name(cfg.name, cfg.content_hash, lineage, resume=resume)
        return cls(cfg=cfg, ray=ray, experiment_name=name, store=store, run=run)

    @property
    def recording(self) -> RunRef:
        """The MLflow run the stages write to (a reproduction has none)."""
        if self.run is None:
            raise ValueError("a reproduction records nothing: it has no MLflow run")
        return self.run
