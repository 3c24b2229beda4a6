"""A shadowed challenger judged on the answers it gave live.

``honing serve-model --capture DIR --shadow challenger`` answers with the champion and scores
the same requests with the challenger after answering; both answers are kept by request id
(:mod:`honing.serving.capture`). When the late labels of those requests arrive
(``honing monitor --capture DIR --labels FILE``), the labelled batch is written with both
answers beside it (:func:`honing.serving.capture.answers_file`), and :func:`recorded` turns
them into the evidence the sequential promotion gate judges
(:func:`honing.registry.follow_challenger`): the two models' own answers on the same live
rows, as they were served, rather than answers computed again from the rows.

Only rows that both versions answered count; when the aliases moved during the window, the
pair of versions that answered most rows is kept, and the gate uses the evidence only if that
pair is the champion and challenger of now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from honing.modeling.decision import Answers
from honing.registry.promotion import Evidence, Recorded
from honing.serving.capture import ANSWER, SHADOWED, answers_file


def _answers(table: pd.DataFrame, prefix: str, classes: list[Any]) -> Answers:
    """One model's recorded answers: probabilities in ``classes`` order and the decided
    codes (the predicted values, for regression)."""
    if not classes:
        return Answers(table[f"{prefix}prediction"].to_numpy(dtype=np.float64), None)
    proba = np.column_stack(
        [table[f"{prefix}probability_{c}"].to_numpy(dtype=np.float64) for c in classes]
    )
    code_of = {str(c): i for i, c in enumerate(classes)}
    codes = table[f"{prefix}prediction"].astype(str).map(code_of)
    if codes.isna().any():
        raise ValueError(f"a recorded {prefix}prediction is not one of {classes}")
    return Answers(proba, codes.to_numpy(dtype=int))


def recorded(batch: Path, y: np.ndarray, known: np.ndarray, classes: list[Any]) -> Recorded | None:
    """The answers given live on ``batch``'s rows, as evidence: ``y`` the labels (codes)
    of its rows where ``known``. None when the batch has no answers beside it, when they do
    not match its rows, or when no row was answered by both models."""
    path = answers_file(Path(batch))
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"version": str, "shadow_version": str})
    if len(table) != len(known):
        return None
    table = table[np.asarray(known, dtype=bool)].reset_index(drop=True)
    both = table["shadow_version"].notna() & table["version"].notna()
    if not both.any():
        return None
    pairs = table.loc[both, ["version", "shadow_version"]].value_counts()
    champion, challenger = (str(v) for v in pairs.index[0])
    rows = both & (table["version"] == champion) & (table["shadow_version"] == challenger)
    picked = table[rows.to_numpy()]
    try:
        evidence = Evidence(
            np.asarray(y)[rows.to_numpy()],
            _answers(picked, SHADOWED, classes),
            _answers(picked, ANSWER, classes),
        )
    except (KeyError, ValueError):  # answers of another contract: compute them again
        return None
    return Recorded(champion, challenger, evidence)
