"""AutoGluon-Tabular on one prepared split, for bench/automl.py. It runs in AutoGluon's own
venv (``make bench-venv-autogluon``: AutoGluon does not co-install with honing), so it
imports nothing of honing's: it reads the split that honing's own cleaning and split made,
fits ``TabularPredictor`` with its default presets and the given ``time_limit``, and writes
its test predictions (class probabilities in code order, or values) for the caller to score
with honing's metrics.

    .venv-autogluon/bin/python bench/autogluon_run.py FOLDER --task T --metric M --budget B

FOLDER holds ``train.csv`` and ``test.csv`` (the label in column ``__label__``, classes as
codes 0..k-1); it gets ``predictions.csv`` and ``autogluon.json`` (fit and predict seconds,
the best model, the number of models).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

LABEL = "__label__"
#: honing's metric -> AutoGluon's eval_metric, by problem type
EVAL_METRIC = {
    ("binary", "roc_auc"): "roc_auc",
    ("multiclass", "roc_auc"): "roc_auc_ovr_macro",
    ("regression", "rmse"): "root_mean_squared_error",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--task", choices=("classification", "regression"), required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--budget", type=float, required=True)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from autogluon.tabular import TabularPredictor

    train = pd.read_csv(args.folder / "train.csv", low_memory=False)
    test = pd.read_csv(args.folder / "test.csv", low_memory=False)
    if args.task == "regression":
        problem = "regression"
    else:
        problem = "binary" if train[LABEL].nunique() == 2 else "multiclass"
    began = time.monotonic()
    predictor = TabularPredictor(
        label=LABEL,
        problem_type=problem,
        eval_metric=EVAL_METRIC[(problem, args.metric)],
        path=str(args.folder / "ag-models"),
        verbosity=0,
    ).fit(train, time_limit=args.budget)  # default presets (AutoGluon seeds itself: 0)
    fit_s = time.monotonic() - began
    began = time.monotonic()
    features = test.drop(columns=[LABEL])
    if problem == "regression":
        out = pd.DataFrame({"prediction": predictor.predict(features).to_numpy()})
    else:
        proba = predictor.predict_proba(features)
        k = int(max(train[LABEL].max(), test[LABEL].max())) + 1
        matrix = np.zeros((len(features), k))
        for code in proba.columns:
            matrix[:, int(code)] = proba[code].to_numpy()
        out = pd.DataFrame(matrix, columns=[f"p{c}" for c in range(k)])
    predict_s = time.monotonic() - began
    out.to_csv(args.folder / "predictions.csv", index=False)
    board = predictor.leaderboard(silent=True)
    (args.folder / "autogluon.json").write_text(
        json.dumps(
            {
                "fit_s": fit_s,
                "predict_s": predict_s,
                "best_model": str(predictor.model_best),
                "models": len(board),
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
