"""The saved-model format: how models and served artifacts are written, and what honing
trusts when it loads them.

Registered scikit-learn models are stored with skops and loaded with the reviewed
:data:`SKOPS_TRUSTED_TYPES`, never with the list a model folder carries itself. A served
artifact is a folder of files named by its ``manifest.json`` (ONNX graphs, ``.npz`` arrays,
skops files and JSON): loading one never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from honing.exceptions import CompressionError

#: The served artifact's index: its format, inputs, label order and candidate name.
MANIFEST = "manifest.json"

#: Types beyond skops' defaults that honing's model families need, reviewed: plain numpy dtypes,
#: scikit-learn's own tree structures and Bunch (ensembles' named members), and the mutual
#: information score function of feature selection (a ``functools.partial`` fixing its seed).
#: Models are stored with skops, so loading a registered model never unpickles arbitrary objects.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
    "functools.partial",
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
    # honing's own date expansion (no state beyond its column names)
    "honing.features.DateFeatures",
]


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def skops_bytes(obj: Any) -> bytes:
    import skops.io as sio

    return sio.dumps(obj)


def trusted_types(data: bytes) -> list[str]:
    """The non-default types a skops file needs, when all are in :data:`SKOPS_TRUSTED_TYPES`."""
    import skops.io as sio

    unknown = sio.get_untrusted_types(data=data)
    bad = [t for t in unknown if t not in SKOPS_TRUSTED_TYPES]
    if bad:
        raise CompressionError(f"served artifact holds untrusted types {bad}; refusing to load")
    return unknown


def load_skops(data: bytes) -> Any:
    import skops.io as sio

    return sio.loads(data, trusted=trusted_types(data))


def read_served(folder: Path) -> dict[str, bytes]:
    folder = Path(folder)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def write_served(files: dict[str, bytes], folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder
