"""The expensive stages' results, kept by honing for a later run of the same inputs.

A result is kept as a record in ``<project>/.honing/results/``: the skops bytes of the stage's
result, sealed with an HMAC-SHA256 under a secret of the project's own (``.secret`` in that
folder, 32 random bytes, mode 600). A record is reused only when its seal matches its key and
its bytes, and it then loads with honing's reviewed types only
(:func:`honing.models.artifacts.load_result`). Nothing in a record can choose how it is read: a
record that another user rewrote, or one moved from another key, is refused and the stage
runs again. The folder and its files are private (700/600) whatever the umask, and a secret
or folder that others could read or write is not trusted: nothing is then reused or kept.

Prefect keeps no result of these stages: its result records name their own serializer (a
record naming ``pickle`` would be unpickled), so honing does not hand them to it.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Generic, TypeVar

from honing.config import PipelineConfig
from honing.lineage import Lineage
from honing.models import artifacts
from honing.stages.keys import stage_key

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The first line of every record: the format and its version.
MAGIC = b"honing-stage-result/1\n"
SECRET = ".secret"
SUFFIX = ".result"
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def _private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            folder.chmod(0o700)


def _untrusted(st: os.stat_result) -> bool:
    """Owned by another user, or open to others: not this project's own."""
    return st.st_uid != os.geteuid() or bool(stat.S_IMODE(st.st_mode) & 0o077)


def _read_secret(path: Path) -> bytes | None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if _untrusted(os.fstat(fd)):
            log.warning("stage results not reused: %s is open to other users", path)
            return None
        key = os.read(fd, 64)
    finally:
        os.close(fd)
    return key if len(key) >= 32 else None


def project_secret(folder: Path) -> bytes | None:
    """The project's secret (created on first use, mode 600), or None when the folder or the
    secret are open to other users or cannot be read."""
    try:
        _private_dir(folder)
        if _untrusted(folder.stat()):
            log.warning("stage results not reused: %s is open to other users", folder)
            return None
        path = folder / SECRET
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return _read_secret(path)
        try:
            os.write(fd, secrets.token_bytes(32))
        finally:
            os.close(fd)
        return _read_secret(path)
    except OSError as exc:
        log.warning("stage results not reused: %s", exc)
        return None


def seal(secret: bytes, key: str, payload: bytes) -> bytes:
    """The record's seal: HMAC-SHA256 over its key and its bytes, as hex."""
    return hmac.new(secret, key.encode() + b"\0" + payload, sha256).hexdigest().encode()


@dataclass(frozen=True)
class Reused(Generic[T]):
    """A stage's result, and whether it came from a kept record (``note`` says which)."""

    value: T
    reused: bool
    note: str = ""

    def log_lines(self) -> list[str]:
        """The result's own lines (scores, choices), after the note when it was reused."""
        inner = getattr(self.value, "log_lines", None)
        return ([self.note] if self.note else []) + (inner() if callable(inner) else [])


@dataclass(frozen=True)
class StageStore:
    """Where a run's stage results are kept: ``read`` reuses a matching record (False with
    ``--force``, a fresh search, a reproduction), ``write`` keeps new ones (False when the
    commit does not say what code ran)."""

    folder: str
    read: bool = True
    write: bool = True

    @classmethod
    def for_project(cls, repo: str, *, read: bool, write: bool) -> StageStore:
        return cls(str(Path(repo).resolve() / ".honing" / "results"), read, write)

    @classmethod
    def off(cls) -> StageStore:
        """Reuses and keeps nothing."""
        return cls("", read=False, write=False)

    def path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a stage result key: {key!r}")
        return Path(self.folder) / f"{key}{SUFFIX}"

    def load(self, key: str) -> tuple[Any, str] | None:
        """The result kept under ``key`` and a note, or None: none kept, or refused (the
        reason is logged)."""
        path = self.path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("stage result %s not reused: %s", path.name, exc)
            return None
        try:
            with os.fdopen(fd, "rb") as fh:
                blob = fh.read()
            secret = project_secret(path.parent)
            if secret is None:
                return None
            head, _, rest = blob.partition(b"\n")
            mac, _, payload = rest.partition(b"\n")
            if head + b"\n" != MAGIC or not hmac.compare_digest(mac, seal(secret, key, payload)):
                log.warning(
                    "stage result %s refused: its seal does not match its bytes (changed "
                    "outside honing, or kept under another key); the stage runs again",
                    path.name,
                )
                return None
            return artifacts.load_result(payload), f"reused the result kept in {path}"
        except Exception as exc:  # noqa: BLE001 - an unreadable record is recomputed
            log.warning("stage result %s refused (%s); the stage runs again", path.name, exc)
            return None

    def save(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key``, sealed, written whole or not at all (mode 600)."""
        path = self.path(key)
        secret = project_secret(path.parent)
        if secret is None:
            return
        payload = artifacts.skops_bytes(value)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + seal(secret, key, payload) + b"\n" + payload)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def reuse(
        self,
        stage: str,
        cfg: PipelineConfig,
        lineage: Lineage,
        compute: Callable[[], T],
        extra: str = "",
    ) -> Reused[T]:
        """``stage``'s result for these inputs (:func:`honing.stages.keys.stage_key`): the kept
        one when ``read`` and a sealed record matches, else ``compute()``, kept when
        ``write``."""
        key = stage_key(stage, cfg, lineage, extra) if self.folder else None
        if key is not None and self.read:
            found = self.load(key)
            if found is not None:
                return Reused(found[0], True, f"{stage}: {found[1]}")
        value = compute()
        if key is not None and self.write:
            try:
                self.save(key, value)
            except Exception as exc:  # noqa: BLE001 - keeping is a courtesy, never a failure
                log.warning("stage result of %s not kept: %s", stage, exc)
        return Reused(value, False)
