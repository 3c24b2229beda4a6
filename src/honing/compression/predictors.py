"""Predictors rebuilt from a served artifact's files: an onnxruntime session, or a feature
pipeline plus a dense PyTorch network. :func:`load_served` reads the manifest to choose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing.compression.onnx import COLUMNS_KEY, DATES_KEY
from honing.exceptions import CompressionError, HoningError, UnsafeModelError
from honing.modeling.decision import Decided, DecisionRule
from honing.modeling.features import DateFeatures
from honing.models.artifacts import MANIFEST, load_skops, npz_arrays, read_served
from honing.models.dense import build_module, dense_layers, quantized_module


class TorchPredictor:
    """Preprocessor (scikit-learn) + dense torch network; ``predict`` gives class indices."""

    def __init__(self, preprocessor: Any, module: Any) -> None:
        self.preprocessor = preprocessor
        self.module = module

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        Z = np.asarray(self.preprocessor.transform(X), dtype=np.float32)
        with torch.inference_mode():
            return torch.softmax(self.module(torch.from_numpy(Z)), dim=1).numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


class OnnxPredictor:
    """An onnxruntime session (one thread) fed from a DataFrame, column by column. A graph
    whose inputs were cut names the columns it reads in its metadata; those are fed, and
    :attr:`columns` lists them (every other column of a request may be absent)."""

    def __init__(
        self,
        model_bytes: bytes,
        numeric: list[str],
        categorical: list[str],
        regression: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.regression = regression
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.inputs = [i.name for i in self.session.get_inputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.dates: list[str] = json.loads(meta[DATES_KEY]) if DATES_KEY in meta else []
        read = json.loads(meta[COLUMNS_KEY]) if COLUMNS_KEY in meta else {}
        self.numeric: list[str] = read.get("numeric", numeric)
        self.categorical: list[str] = read.get("categorical", categorical)
        #: The columns the graph does not read (none unless its inputs were cut).
        self.dropped: list[str] = read.get("dropped", [])

    @property
    def columns(self) -> list[str]:
        """The raw columns a request must carry: those the graph reads."""
        return list(dict.fromkeys([*self.numeric, *self.categorical, *self.dates]))

    def feed(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """One input per column, by position: the graph's inputs were declared numeric first,
        then categorical, then each date column's parts (expanded here, as the pipeline
        expands them), and the converter may have sanitized their names (spaces, dots)."""
        columns: list[np.ndarray] = []
        if self.numeric:
            num = X[self.numeric].to_numpy(dtype=np.float32)
            columns += [num[:, i : i + 1] for i in range(len(self.numeric))]
        if self.categorical:
            cat = X[self.categorical].to_numpy(dtype=object)
            cat[pd.isna(cat)] = ""
            cat = cat.astype(str)
            columns += [cat[:, i : i + 1] for i in range(len(self.categorical))]
        if self.dates:
            parts = DateFeatures().fit(X[self.dates]).transform(X[self.dates]).astype(np.float32)
            columns += [parts[:, i : i + 1] for i in range(parts.shape[1])]
        return dict(zip(self.inputs, columns, strict=True))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = self.session.run(self.outputs[-1:], self.feed(X))[0]
        return np.asarray(out, dtype=np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.regression:  # skl2onnx regressors: one output, shape (n, 1)
            out = self.session.run(self.outputs[:1], self.feed(X))[0]
            return np.asarray(out, dtype=np.float64).reshape(-1)
        return np.argmax(self.predict_proba(X), axis=1)


def load_served(files: dict[str, bytes]) -> Any:
    """Rebuild a candidate's predictor from its artifact files (``manifest.json`` says how)."""
    try:
        manifest = json.loads(files[MANIFEST])
        kind = manifest["format"]
    except (KeyError, ValueError) as exc:
        raise CompressionError(f"served artifact has no valid {MANIFEST}: {exc}") from exc
    if kind == "onnx":
        return OnnxPredictor(
            files["model.onnx"],
            manifest["numeric"],
            manifest["categorical"],
            regression=manifest.get("task") == "regression",
        )
    if kind in ("dense", "dense_int8"):
        preprocessor = load_skops(files["preprocessor.skops"])
        arrays = npz_arrays(files["network.npz"])
        if kind == "dense_int8":
            module = quantized_module(arrays, manifest["activation"])
        else:
            module = build_module(dense_layers(arrays, manifest["activation"]))
        return TorchPredictor(preprocessor, module)
    if kind == "pipeline":
        return load_skops(files["pipeline.skops"])
    raise CompressionError(f"served artifact format {kind!r} is not one honing serves")


def load_decided(files: dict[str, bytes]) -> Decided:
    """The artifact's predictor with the decision rule its manifest carries (argmax of the
    manifest's labels for artifacts written before rules existed)."""
    return Decided(load_served(files), DecisionRule.from_manifest(json.loads(files[MANIFEST])))


def columns_read(model: Any) -> list[str] | None:
    """The raw columns a loaded model reads, when it names them (a served graph whose
    unused inputs were cut); None: every feature column."""
    predictor = model.predictor if isinstance(model, Decided) else model
    return getattr(predictor, "columns", None)


def load_model_folder(folder: Path) -> Any:
    """A model folder (MLflow's layout) loaded without running any of its code: a
    scikit-learn pipeline stored with skops, checked against honing's own list of reviewed
    types (never the folder's), or the served flavor's files (ONNX, numpy arrays, skops).
    MLflow's own loaders are not used: they unpickle ``python_model.pkl`` and take the
    trusted types from the folder's ``MLmodel``, which whoever edits the folder controls."""
    import yaml

    folder = Path(folder)
    try:
        flavors = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))["flavors"]
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as exc:
        raise HoningError(f"{folder}: not an MLflow model folder (MLmodel: {exc})") from exc
    served = folder / "artifacts" / "served"
    if "sklearn" in flavors:
        fmt = flavors["sklearn"].get("serialization_format")
        if fmt != "skops":
            raise UnsafeModelError(
                f"{folder}: rule: honing loads scikit-learn models stored with skops only; this "
                f"one is stored with {fmt!r}, whose loading can run code"
            )
        name = Path(str(flavors["sklearn"].get("pickled_model", ""))).name
        return load_skops((folder / name).read_bytes())
    if "python_function" in flavors and served.is_dir():
        # ONNX session, dense network or pipeline, with the manifest's decision rule
        return load_decided(read_served(served))
    raise UnsafeModelError(
        f"{folder}: rule: load a honing model (scikit-learn with skops, or the served flavor); "
        f"this folder has flavors {sorted(flavors)}"
    )
