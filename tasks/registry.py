"""Registry tasks of the monitoring flow: the champion scored on a labelled batch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from honing import registry
from honing.registry.champion import ChampionScore
from honing_flows.tasks import io_task


@io_task
def score_champion(
    name: str, alias: str, X: pd.DataFrame, y: np.ndarray, classes: list
) -> ChampionScore | None:
    return registry.score_champion(name, alias, X, y, classes)
