"""Models logged to MLflow: the native pipeline and the compressed served candidate, both as
honing's pyfunc over the model's files and its decision rule (MLflow "models from code": the
logged model holds a short script, never a pickle), with the signature of the output
contract and each model's own test metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from honing import metric_keys
from honing.config.gates_config import NAME_CHARS
from honing.modeling.decision import Decided, DecisionRule
from honing.tracking import resumed, set_tags


def log_native_model(
    run_id: str,
    model: Any,
    input_example: Any,
    rule: DecisionRule | None = None,
    *,
    name: str = "model",
    metrics: dict[str, float] | None = None,
) -> str:
    """Log a fitted scikit-learn pipeline as the run's ``model``: its skops bytes and a
    manifest with the labels and the decision ``rule`` (default: argmax of the estimator's
    classes), behind the same pyfunc as the served flavor, so that both answer with the
    same columns (:meth:`honing.modeling.decision.DecisionRule.outputs`); returns its URI."""
    from sklearn.base import is_classifier

    from honing.compression import native_candidate, with_rule

    if rule is None:
        classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
        rule = DecisionRule.argmax(classes if is_classifier(model) else [])
    files = with_rule(native_candidate(model).files, "native", rule)
    # the signature's outputs from the model in memory: the same pipeline the files hold
    # (MLflow serves the example from the logged files, and the load-and-query check loads
    # them in a fresh process), without deserializing a large ensemble once more
    outputs = Decided(model, rule).outputs(input_example)
    uri = log_served_model(
        run_id, files, input_example, name=name, metrics=metrics, outputs=outputs
    )
    set_tags(run_id, {"honing.serialization": "skops"})
    return uri


def model_requirements() -> list[str]:
    """The pip requirements logged with every model: honing (whose classes the MLP and the
    served flavor need) and the libraries that load and run the artifacts, pinned to the
    versions that wrote them. Stated, not inferred: MLflow's inference loads the model in a
    subprocess, which costs seconds per model."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in (
        "honing",
        "scikit-learn",
        "skops",
        "torch",
        "onnxruntime",
        "mlflow",
    ):
        try:
            reqs.append(f"{dist}=={version(dist).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return reqs


#: The pyfunc's code as MLflow stores it in a logged model (no pickle of the model class).
MODEL_CODE = (
    '"""honing\'s pyfunc: the model\'s files plus its decision rule (honing.served)."""\n'
    "import mlflow\n\n"
    "from honing.served import ServedModel\n\n"
    "mlflow.models.set_model(ServedModel())\n"
)


def log_served_model(
    run_id: str,
    files: dict[str, bytes],
    input_example: Any,
    name: str = "served_model",
    metrics: dict[str, float] | None = None,
    outputs: Any = None,
) -> str:
    """Log a model's files (a compressed candidate, or the native pipeline) as the pyfunc
    ``name`` of the run (a logged-model name such as ``churn-lightgbm``), with the signature
    of its output contract and its own test ``metrics`` (logged with its model id, so the
    model's page shows its numbers, not the run's); returns its URI. ``outputs``: the
    model's answers to ``input_example`` when already known (else the files are loaded)."""
    import re
    import tempfile
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    from honing.compression.predictors import columns_read, load_decided
    from honing.models.artifacts import write_served

    name = re.sub(rf"[^{NAME_CHARS}]+", "-", name).strip("-") or "model"
    loaded = load_decided(files)
    read = columns_read(loaded)  # a graph whose unused inputs were cut: its signature too
    if read is not None:
        input_example = input_example[[c for c in input_example.columns if c in read]]
    output = loaded.outputs(input_example) if outputs is None else outputs
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_served(files, Path(tmp) / "served")
        # models from code: MLflow stores this script instead of a pickled python_model
        code = Path(tmp) / "honing_model.py"
        code.write_text(MODEL_CODE, encoding="utf-8")
        with resumed(run_id), warnings.catch_warnings():
            # MLflow's hint that integer columns cannot hold missing values: declaring them
            # doubles would refuse whole-number batches instead ("cannot safely convert
            # int64 to float64"), so the signature keeps the table's own types
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(code),
                artifacts={"served": str(folder)},
                input_example=input_example,
                signature=infer_signature(input_example, output),
                pip_requirements=model_requirements(),
            )
            if metrics:
                mlflow.log_metrics(
                    {metric_keys.test(k): float(v) for k, v in metrics.items()},
                    model_id=info.model_id,
                )
    return str(info.model_uri)
