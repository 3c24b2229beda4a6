"""The served flavor: a compressed candidate (ONNX graph, int8 network, distilled student ...)
as an MLflow pyfunc model. Imported only when such a model is logged or loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from honing.artifacts import MANIFEST, read_served
from honing.compression.predictors import load_served
from honing.inference import outputs


class ServedModel(mlflow.pyfunc.PythonModel):
    """``predict`` returns the predicted label and the probability of the positive class."""

    def __getstate__(self) -> dict[str, Any]:
        # Only the class is stored; the artifact is loaded again by ``load_context``.
        return {}

    def load_context(self, context: Any) -> None:
        files = read_served(Path(context.artifacts["served"]))
        self.classes_ = json.loads(files[MANIFEST])["classes"]
        self.predictor_ = load_served(files)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predictor_.predict_proba(X))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        if not self.classes_:  # regression
            return pd.DataFrame({"prediction": self.predictor_.predict(model_input)})
        return outputs(self.predict_proba(model_input), self.classes_)
