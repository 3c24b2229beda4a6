"""Artifact locations relative to an embedded (SQLite) store, so that a project can move.

MLflow turns a local artifact location into an absolute ``file://`` URI when it creates an
experiment. A project folder that is copied or moved (another checkout, a CI workspace, a
colleague's machine) then points its runs and registered models at folders that are not
there, and the artifact viewer shows the absolute path. An experiment that honing creates
on an SQLite store instead keeps a location such as ``honing-store:mlartifacts/churn``: a
path relative to the folder that holds the store's database file. :func:`repository`,
registered with MLflow for the ``honing-store`` scheme by the package's entry point
(``mlflow.artifact_repository``), resolves it against wherever that folder is now, in the
training process, in a served model's process and in the MLflow UI alike.

Only a folder inside the store's folder is recorded so (the two move together). A tracking
server (``mlflow-artifacts:``), remote roots (``s3://``) and folders elsewhere are kept as
given: they are portable already, or fixed on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The URI scheme of a location relative to the SQLite store's folder.
SCHEME = "honing-store"
_SQLITE = "sqlite:///"


def sqlite_file(tracking_uri: str) -> Path | None:
    """An SQLite store's database file, its query (``?timeout=...``) left out (None: not an
    SQLite file store)."""
    if not tracking_uri.startswith(_SQLITE):
        return None
    path = tracking_uri[len(_SQLITE) :].partition("?")[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def store_folder(tracking_uri: str) -> Path | None:
    """The folder holding an SQLite store's database file (None: not an SQLite file store)."""
    db = sqlite_file(tracking_uri)
    return None if db is None else db.parent


def location(artifact_root: Path, tracking_uri: str) -> str | None:
    """``artifact_root`` (an absolute folder) as a location relative to the folder of the
    SQLite store of ``tracking_uri``, absolute itself. None where the store is not an SQLite
    file, or the folder is not inside the store's folder: the two would not move together."""
    folder = store_folder(tracking_uri)
    if folder is None or not folder.is_absolute():
        return None
    folder, artifact_root = folder.resolve(), artifact_root.resolve()
    if artifact_root == folder or folder not in artifact_root.parents:
        return None
    return f"{SCHEME}:{artifact_root.relative_to(folder).as_posix()}"


def local_uri(uri: str, tracking_uri: str) -> str:
    """The absolute ``file://`` URI that the store-relative ``uri`` names today."""
    scheme, _, relative = uri.partition(":")
    if scheme != SCHEME:
        raise ValueError(f"{uri!r} is not a {SCHEME}: location")
    folder = store_folder(tracking_uri)
    if folder is None:
        raise ValueError(
            f"{uri!r} is relative to an SQLite tracking store's folder, but the tracking URI "
            f"is {tracking_uri!r}: open it with the SQLite store it was logged to"
        )
    return (folder.resolve() / relative.lstrip("/")).resolve().as_uri()


def repository(artifact_uri: str, tracking_uri: str | None = None, **kwargs: Any) -> Any:
    """MLflow's local artifact repository for the folder that ``artifact_uri`` names, with
    the store of ``tracking_uri`` (default: the process's tracking URI, which ``honing ui``
    sets for the MLflow UI it starts)."""
    import mlflow
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    uri = tracking_uri if tracking_uri and tracking_uri.startswith(_SQLITE) else None
    return LocalArtifactRepository(
        local_uri(artifact_uri, uri or mlflow.get_tracking_uri()), tracking_uri, **kwargs
    )
