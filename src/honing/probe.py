"""``python -m honing.probe URI SAMPLE``: what :func:`honing.infra.load_and_query` runs in a
fresh process. Loads a model as a server would and prints one JSON line: the load seconds,
the p50 milliseconds of answering the sample, and the rows answered."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str]) -> int:
    # the loader a server runs on a version's downloaded files (registry.load_model's own),
    # without the registry's imports (MLflow's client, the gates), which it does not need
    from honing.decision import Decided, DecisionRule
    from honing.inference import load_model_folder

    uri, sample_path = argv
    start = time.perf_counter()
    model = load_model_folder(Path(uri))
    load_s = time.perf_counter() - start
    sample = pd.read_parquet(sample_path)
    if not isinstance(model, Decided):
        model = Decided(model, DecisionRule.argmax(list(getattr(model, "classes_", []))))
    times, rows = [], 0
    for _ in range(11):
        t = time.perf_counter()
        rows = len(model.outputs(sample))
        times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"load_s": load_s, "p50_ms": float(np.median(times[1:])), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
