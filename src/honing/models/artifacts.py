"""The saved-model format: how models and served artifacts are written, and what honing
trusts when it loads them.

Registered scikit-learn models are stored with skops and loaded with the reviewed
:data:`SKOPS_TRUSTED_TYPES`, never with the list a model folder carries itself. A served
artifact is a folder of files named by its ``manifest.json`` (ONNX graphs, ``.npz`` arrays,
skops files and JSON): loading one never unpickles arbitrary objects.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from honing.exceptions import UnsafeModelError
from honing.runtime import load_module

#: The served artifact's index: its format, inputs, label order and candidate name.
MANIFEST = "manifest.json"

#: Types beyond skops' defaults that honing's model families need, reviewed: plain numpy dtypes,
#: scikit-learn's own tree structures and Bunch (ensembles' named members), the target
#: encoder's fold generators, and the mutual information score function of feature selection
#: (a ``functools.partial`` fixing its seed).
#: Models are stored with skops, so loading a registered model never unpickles arbitrary objects.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
    "functools.partial",
    # the target encoder's cross-fitting folds (a seed and a count, no data)
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    # the boosting families (their boosters are stored as the libraries' own model text)
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "catboost.core.CatBoostClassifier",
    "catboost.core.CatBoostRegressor",
    # honing's own date expansion (no state beyond its column names)
    "honing.modeling.features.DateFeatures",
    # the PyTorch MLP: its state is plain data (weights as numpy arrays, see honing.models.nn)
    "honing.models.nn.TorchMLPClassifier",
    "honing.models.nn.TorchMLPRegressor",
]


def digests(folder: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``folder``, by relative POSIX path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def verify(folder: Path, expected: dict[str, str], what: str) -> None:
    """Refuse ``folder`` unless its files are exactly ``expected`` (path -> SHA-256)."""
    actual = digests(folder)
    changed = sorted(k for k in expected if actual.get(k) != expected[k])
    added = sorted(set(actual) - set(expected))
    if changed or added:
        raise UnsafeModelError(
            f"{what}: rule: files must match the SHA-256 recorded at registration; "
            f"{', '.join(changed + added)} differ; refusing to load"
        )


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def skops_bytes(obj: Any) -> bytes:
    sio = load_module("skops.io")
    return bytes(sio.dumps(obj))


#: The modules that held honing's stored types before the library was grouped into packages.
#: Files saved then (registered models, kept stage results) name the old module; they load
#: with the type's new one, checked against the same reviewed list.
MOVED_MODULES = {
    "honing.features": "honing.modeling.features",
    "honing.nn": "honing.models.nn",
    "honing.training": "honing.modeling.training",
    "honing.decision": "honing.modeling.decision",
    "honing.trials": "honing.search.trials",
    "honing.ensembles": "honing.search.ensembles",
    "honing.explain": "honing.evaluation.explain",
}


def _renamed(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: MOVED_MODULES.get(v, v)
            if k in ("__module__", "module_path") and isinstance(v, str)
            else _renamed(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renamed(v) for v in node]
    return node


def current_names(data: bytes) -> bytes:
    """A skops file whose types are named by the modules they live in now: ``data`` itself
    unless it names one of :data:`MOVED_MODULES` (its schema rewritten, nothing else)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            schema = zf.read("schema.json")
            if not any(f'"{old}"'.encode() in schema for old in MOVED_MODULES):
                return data
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as new:
                for info in zf.infolist():
                    body = zf.read(info)
                    if info.filename == "schema.json":
                        body = json.dumps(_renamed(json.loads(body)), indent=2).encode()
                    new.writestr(info, body)
            return out.getvalue()
    except (zipfile.BadZipFile, KeyError, ValueError):
        return data  # not a skops file: skops says so itself


def _load_reviewed(data: bytes, reviewed: list[str], what: str) -> Any:
    """``data`` loaded by skops when every type it holds beyond skops' defaults is in
    ``reviewed`` (checked on the file's tree before any object is made, in the same pass
    that loads it); else :class:`UnsafeModelError` naming the others."""
    sio = load_module("skops.io")
    from skops.io.exceptions import UntrustedTypesFoundException

    data = current_names(data)
    try:
        return sio.loads(data, trusted=reviewed)
    except UntrustedTypesFoundException:
        bad = [t for t in sio.get_untrusted_types(data=data) if t not in reviewed]
        raise UnsafeModelError(
            f"rule: {what} may hold only the types honing reviewed; this one holds {bad}; "
            "refusing to load"
        ) from None


def load_skops(data: bytes) -> Any:
    """A model's skops file, holding only the types in :data:`SKOPS_TRUSTED_TYPES`."""
    return _load_reviewed(data, SKOPS_TRUSTED_TYPES, "a model")


def read_served(folder: Path) -> dict[str, bytes]:
    folder = Path(folder)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def write_served(files: dict[str, bytes], folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


#: The types of the stages' results that may be reused from an earlier run (see
#: :mod:`honing.stages.keys`), beyond the models' own: honing's plain-data result records
#: (dataclasses of numbers, strings and arrays; loading one sets fields and runs none of
#: their code).
RESULT_TRUSTED_TYPES = [
    "honing.search.trials.SearchResult",
    "honing.search.trials.TrialResult",
    "honing.modeling.training.ModelSpec",
    "honing.modeling.training.TrainResult",
    "honing.modeling.training.CVResult",
    "honing.search.ensembles.EnsembleDecision",
    "honing.modeling.decision.DecisionFit",
    "honing.modeling.decision.DecisionRule",
    "honing.modeling.decision.ThresholdCurve",
    "honing.stages.fit.Refit",
    "honing.evaluation.explain.Importance",
    "honing.stages.evaluate.Explained",
    "honing.compression.CandidateMeasure",
    "honing.compression.CompressionChoice",
    "honing.compression.CompressionReport",
    "honing.compression.CompressionResult",
]


def load_result(data: bytes) -> Any:
    """A stage result stored with :func:`skops_bytes`, loaded with the types reviewed for
    models and for results only: a tampered file cannot make loading run code."""
    return _load_reviewed(data, SKOPS_TRUSTED_TYPES + RESULT_TRUSTED_TYPES, "a reused stage result")
