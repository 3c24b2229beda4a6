"""Preparing the search: clean the table, split it, set up the features and share out the
time budget."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from honing import data
from honing.config import PipelineConfig, WindowConfig
from honing.data import windowing
from honing.lineage import Lineage
from honing.modeling import training
from honing.search import planner


@dataclass(frozen=True)
class Prepared:
    """The train/test split and what the stages after it share: the label order, the feature
    setup, the budget plan, and the lineage of the data (what the stages' results depend
    on, :mod:`honing.stages.keys`)."""

    cleaning: data.CleaningReport
    split: data.Split
    classes: list
    setup: training.TrainingSetup
    budget: planner.BudgetPlan
    lineage: Lineage
    windowed: int | None = None  # rows the window policy kept, when it dropped some

    def log_lines(self) -> list[str]:
        cleaned = self.cleaning
        return [
            f"clean: {cleaned.rows_in} rows in, {cleaned.duplicates_dropped} duplicates and "
            f"{cleaned.invalid_labels_dropped} invalid labels dropped; split: "
            f"{len(self.split.X_train)} train, {len(self.split.X_test)} test rows"
            + (f" (window: the newest {self.windowed} rows)" if self.windowed is not None else ""),
            *self.budget.log_lines(),
        ]


def prepare(
    cfg: PipelineConfig,
    raw: pd.DataFrame,
    lineage: Lineage,
    *,
    elapsed_s: float,
    load: planner.MachineLoad | None = None,
) -> Prepared:
    """Clean the validated table ``raw`` (from ``lineage``), keep the rows of the window
    policy (``data.window``), split them, set up the features
    on the training split, and plan the search's share of the budget (``elapsed_s`` already
    spent, on a machine as busy as ``load`` says)."""
    split = split_table(cfg, raw)
    budget = planner.plan(
        cfg.time_budget_s,
        elapsed_s=elapsed_s,
        compression=cfg.compression.enabled,
        search_cap_s=cfg.search.time_budget_s,
        load=load,
    )
    return Prepared(
        cleaning=split.cleaning,
        split=split.split,
        classes=split.classes,
        setup=training.training_setup(cfg, split.split.X_train, split.split.groups_train),
        budget=budget,
        lineage=lineage,
        windowed=split.windowed,
    )


@dataclass(frozen=True)
class SplitTable:
    """A table cleaned, windowed and split as a run of its config does it."""

    cleaning: data.CleaningReport
    split: data.Split
    classes: list
    windowed: int | None  # rows the window policy kept, when it dropped some


def split_table(
    cfg: PipelineConfig, raw: pd.DataFrame, window: WindowConfig | None = None
) -> SplitTable:
    """Clean ``raw`` (the config's ``cleaning``), keep the rows of its window policy (or of
    ``window``: a registered version's own) and split them (``split``): the train and test
    rows a run of ``cfg`` uses. Monitoring and the benchmarks call it to get the same rows."""
    cleaned, cleaning = data.clean(
        raw,
        cfg.data.target,
        deduplicate=cfg.cleaning.deduplicate,
        drop_invalid_labels=cfg.cleaning.drop_invalid_labels,
    )
    kept = windowing.window(cleaned, window or cfg.data.window)
    split, classes = data.split_data(
        kept,
        cfg.data.target,
        positive_label=cfg.data.positive_label,
        drop_columns=cfg.data.drop_columns,
        test_size=cfg.split.test_size,
        seed=cfg.split.seed,
        task=cfg.task,
        time_column=cfg.split.time_column,
        group_column=cfg.split.group_column,
    )
    return SplitTable(cleaning, split, classes, len(kept) if len(kept) < len(cleaned) else None)
