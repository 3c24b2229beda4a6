"""Tampered model files run nothing: loading takes only formats that execute no code
(skops with honing's own list of reviewed types, ONNX, numpy), and a registered version
loads only when its files match the SHA-256 recorded as its registration's last tag."""

import json
import pickle
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from honing import lineage, registry, tracking
from honing.config.settings import read_yaml
from honing.evaluation import evaluate
from honing.exceptions import ConfigError, UnsafeModelError
from honing.lineage import DIGEST_TAG, Lineage
from honing.registry.champion import champion_gate
from honing.tracking import model_logging

pytestmark = [pytest.mark.integration]


class Payload:
    """Unpickling this writes a marker file: proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _data(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    return X, (X["x"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()


def _register(store, X, y, model=None, name="sec"):
    exp = tracking.ensure_experiment("security", store.mlflow.artifact_root)
    run_id = tracking.start_run(exp, "train")
    model = model or LogisticRegression().fit(X, y)
    uri = model_logging.log_native_model(run_id, model, X.head(3))
    report = evaluate(model, X, y, [0, 1])
    champion = registry.score_champion(name, "champion", X, y, [0, 1])
    decision = champion_gate(report, champion, metric="roc_auc", margin=0.0)
    lin = Lineage("d.csv", "abc", "deadbeef", False, "h", "c.yaml", "fr")
    result = registry.register_version(
        model_uri=uri,
        name=name,
        run_id=run_id,
        decision=decision,
        report=report,
        lineage=lin,
        alias="champion",
    )
    tracking.end_run(run_id)
    return result


def _stored_folder(name: str, version: str) -> Path:
    """The version's files where the store keeps them (what a tamperer edits in place)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    uri = mlflow.MlflowClient().get_model_version_download_uri(name, version)
    # the local folder it names (a store-relative location resolved as MLflow resolves it)
    folder = Path(get_artifact_repository(uri, tracking_uri=mlflow.get_tracking_uri()).artifact_dir)
    assert (folder / "MLmodel").is_file(), uri
    return folder


def _local_model(tmp_path: Path, X, y) -> Path:
    folder = tmp_path / "model"
    mlflow.sklearn.save_model(
        LogisticRegression().fit(X, y), str(folder), serialization_format="skops"
    )
    return folder


def test_a_folder_switched_to_cloudpickle_is_refused_and_runs_nothing(tmp_path):
    X, y = _data()
    folder = _local_model(tmp_path, X, y)
    marker = tmp_path / "marker"
    (folder / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    meta["flavors"]["sklearn"].update(serialization_format="cloudpickle", pickled_model="model.pkl")
    meta["flavors"]["python_function"]["model_path"] = "model.pkl"
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(UnsafeModelError, match="skops only"):
        registry.load_model(str(folder))
    assert not marker.exists()


def test_the_folder_cannot_widen_the_trusted_types(tmp_path):
    import skops.io as sio

    X, y = _data()
    folder = _local_model(tmp_path, X, y)
    # a skops file holding a type outside honing's reviewed list, which the folder's own
    # MLmodel declares trusted: the folder's list is never read
    (folder / "model.skops").write_bytes(sio.dumps({"model": pd.Timedelta(1)}))
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"] = ["pandas._libs.tslibs.timedeltas.Timedelta"]
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(UnsafeModelError, match="types honing reviewed"):
        registry.load_model(str(folder))


def test_a_registered_version_edited_in_place_is_refused_everywhere(mlflow_store, tmp_path):
    X, y = _data()
    first = _register(mlflow_store, X, y)
    assert first.promoted
    recorded = json.loads(mlflow.MlflowClient().get_model_version("sec", "1").tags[DIGEST_TAG])
    skops_file = "artifacts/served/pipeline.skops"
    assert skops_file in recorded and all(len(h) == 64 for h in recorded.values())
    model = registry.load_model("models:/sec@champion")
    assert model.predict(X.head(3)).shape == (3,)

    stored = _stored_folder("sec", "1")
    marker = tmp_path / "marker"
    (stored / skops_file).write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UnsafeModelError, match="pipeline.skops differ"):
        registry.load_model("models:/sec/1")
    # the next run's champion/challenger gate cannot score it, so nothing is promoted
    score = registry.score_champion("sec", "champion", X, y, [0, 1])
    assert score is not None and score.report is None and "SHA-256" in score.error
    second = _register(mlflow_store, X, y, LogisticRegression(C=0.5).fit(X, y))
    assert not second.promoted
    assert not marker.exists()


def test_the_pyfunc_code_of_a_model_folder_is_never_run(mlflow_store, tmp_path):
    """The logged pyfunc is stored as code (models from code, no pickle); honing's loader
    reads the manifest and the skops file and never runs that code, even when edited."""
    X, y = _data()
    _register(mlflow_store, X, y)
    folder = Path(mlflow.artifacts.download_artifacts("models:/sec/1", dst_path=str(tmp_path)))
    assert not list(folder.rglob("*.pkl"))
    marker = tmp_path / "marker"
    for code in folder.rglob("honing_model.py"):
        code.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('pwned')\n")
    model = registry.load_model(str(folder))
    assert model.predict(X.head(3)).shape == (3,)
    assert not marker.exists()


def test_a_version_whose_registration_was_cut_off_is_refused(mlflow_store):
    X, y = _data()
    _register(mlflow_store, X, y)
    client = mlflow.MlflowClient()
    client.delete_model_version_tag("sec", "1", DIGEST_TAG)  # as if killed before its last tag
    with pytest.raises(UnsafeModelError, match="complete registrations"):
        registry.load_model("models:/sec/1")


def test_duplicate_keys_and_alias_bombs_are_config_errors(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("data:\n  path: a.csv\nsearch: {}\ndata:\n  target: y\n")
    with pytest.raises(ConfigError, match="duplicate key 'data'"):
        read_yaml(dup)
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 2000
    with pytest.raises(ConfigError, match="alias"):
        read_yaml(bomb)
    # a config with a few aliases still reads
    ok = tmp_path / "ok.yaml"
    ok.write_text("base: &b {x: 1}\none: *b\ntwo: *b\n")
    assert read_yaml(ok) == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}


def test_lineage_module_owns_the_digest_tag():
    assert lineage.DIGEST_TAG == "honing.sha256"


#: A pipeline (dates expanded by honing's DateFeatures, scaled, honing's PyTorch MLP) saved
#: with skops by honing at 21d70e5, before the library was grouped into packages: its file
#: names honing.features.DateFeatures and honing.nn.TorchMLPClassifier. Its answers on the
#: rows below were printed by that commit's code when it saved it.
OLD_MODEL = Path(__file__).parent / "fixtures" / "model_saved_before_packages.skops"
OLD_ROWS = pd.DataFrame(
    {
        "when": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"],
        "x": [0.1257302210933933, -0.1321048632913019, 0.6404226504432821,
              0.10490011715303971, -0.535669373161111],
    }
)  # fmt: skip
OLD_ANSWERS = [0.396459, 0.41534, 0.40138, 0.429293, 0.450428]


def test_a_model_saved_before_the_packages_loads_with_the_same_answers():
    from honing.modeling.features import DateFeatures
    from honing.models.artifacts import load_skops
    from honing.models.nn import TorchMLPClassifier

    model = load_skops(OLD_MODEL.read_bytes())
    assert isinstance(model.named_steps["model"], TorchMLPClassifier)
    assert isinstance(model.named_steps["features"].named_transformers_["dates"], DateFeatures)
    answers = model.predict_proba(OLD_ROWS)[:, 1]
    np.testing.assert_allclose(answers, OLD_ANSWERS, atol=1e-6)


def test_an_old_module_name_does_not_widen_the_trusted_types():
    """Renaming a moved module maps honing's old names to its new ones only; a type that
    was never reviewed is refused under its new name."""
    import io
    import zipfile

    from honing.models.artifacts import load_skops

    with zipfile.ZipFile(OLD_MODEL) as zf:
        files = {i.filename: zf.read(i) for i in zf.infolist()}
    files["schema.json"] = files["schema.json"].replace(
        b'"__class__": "DateFeatures"', b'"__class__": "DateParser"'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    with pytest.raises(UnsafeModelError, match=r"honing\.modeling\.features\.DateParser"):
        load_skops(out.getvalue())
