"""``python -m honing.registry.probe URI SAMPLE``: what
:func:`honing.registry.infra.load_and_query` runs in a fresh process. Loads a model as a server
would and prints one JSON line: the load seconds, the p50 milliseconds of answering the sample,
and the rows answered.

``python -m honing.registry.probe --wait`` is the same process started ahead of time
(:class:`honing.registry.infra.WarmProbe`): it imports what a server imports at its own start,
then reads one line, ``{"uri": ..., "sample": ...}``, from its input and answers it the same
way. It has never seen the model before that line: the files are loaded from disk as a server
would."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def probe(uri: str, sample_path: str) -> dict[str, float | int]:
    # the loader a server runs on a version's downloaded files (registry.load_model's own),
    # without MLflow's client, which it does not need (the registry package's own module
    # imports it only inside the functions that talk to the registry)
    from honing.compression.predictors import load_model_folder
    from honing.modeling.decision import Decided, DecisionRule

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
    return {"load_s": load_s, "p50_ms": float(np.median(times[1:])), "rows": rows}


def main(argv: list[str]) -> int:
    if argv == ["--wait"]:
        # a server's own start-up imports: the loader and the libraries models are made of
        from honing.runtime import preload

        preload(("honing.compression.predictors", "skops.io", "lightgbm", "xgboost", "catboost"))
        line = sys.stdin.readline()
        if not line.strip():  # the run ended without a version to check
            return 0
        request = json.loads(line)
        argv = [request["uri"], request["sample"]]
    uri, sample_path = argv
    print(json.dumps(probe(uri, sample_path)), flush=True)
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    # the caller waits for this process to end before it reads the answer: the teardown of
    # the libraries it imported (the boosting libraries, skops) would be that wait, and it
    # has nothing to write or release
    os._exit(status)
