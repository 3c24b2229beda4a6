"""The pyfunc behind every registered flavor (the native pipeline and the compressed served
candidate): its files (ONNX graph, int8 network, skops pipeline ...) plus a manifest with the
labels and the decision rule. Imported only when such a model is logged or loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from honing.compression.predictors import load_decided
from honing.models.artifacts import read_served


class ServedModel(mlflow.pyfunc.PythonModel):
    """``predict`` returns the output contract of
    :meth:`honing.modeling.decision.DecisionRule.outputs`: the label in the user's own values, the
    probability of each class and the threshold used (regression: ``prediction``)."""

    def __getstate__(self) -> dict[str, Any]:
        # Only the class is stored; the artifact is loaded again by ``load_context``.
        return {}

    def load_context(self, context: Any) -> None:
        self.model_ = load_decided(read_served(Path(context.artifacts["served"])))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return self.model_.outputs(model_input)
