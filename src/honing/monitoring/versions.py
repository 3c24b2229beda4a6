"""Data versions: new batches come in as DVC-tracked versions of the training table, and a
window policy chooses which rows of the newest version train the model.

A labelled batch is validated with the table's own suite and quality rules (on the table it
would make), then appended to ``data.path``: the file's old bytes are kept as they are, the
new rows go after them, and DVC records the new version (``dvc add``, or ``dvc commit`` of
the stage that produces the file). The version before stays in the DVC cache, so
``honing reproduce`` can still fetch it by MD5. Each version is a line of the file's
history (``<data.path>.history.jsonl``): its MD5, the batch, the rows. An unlabelled batch
is stored beside the table (``batches/``, DVC-tracked too) for monitoring. In a batch whose
labels are partly in, the rows without one are left out of the version, and it says so. A
class the label has never held is taken into the suite's value set with three classes or
more; a class too rare for that, or a binary label's third, is left out as well, its rows
kept in a file of their own (``held/``, DVC-tracked) until the class is in the suite.
What the watcher of ``honing serve`` asks, which watched files changed, is
:mod:`honing.data.watch`."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from honing import data, validation
from honing.config import PipelineConfig
from honing.data.target import plain
from honing.exceptions import DataLoadError, DataValidationError
from honing.serving import inference
from honing.validation import profiling

LOG = logging.getLogger(__name__)

__all__ = ["Ingested", "NewClasses", "cached_copy", "history", "ingest", "new_classes", "track"]


@dataclass(frozen=True)
class Ingested:
    """What :func:`ingest` did with a batch: appended as ``version`` of ``data_path``
    (labelled), or stored at ``stored`` for monitoring (unlabelled)."""

    batch: str
    batch_md5: str
    rows: int
    labelled: bool
    stored: str
    md5: str
    previous_md5: str | None
    version: int | None
    total_rows: int
    new: bool = True  # False: the batch was already ingested, and nothing changed
    warnings: list[str] = field(default_factory=list)  # rows left out, statistics moved
    suite_widened: list[str] = field(default_factory=list)  # how the suite took them in
    #: Where the rows of a class the label has never held were kept, left out of the
    #: version (:func:`new_classes`); None where there were none.
    held: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log_lines(self) -> list[str]:
        return [self.line(), *(f"warning: {w}" for w in self.warnings)]

    def line(self) -> str:
        if not self.new:
            return (
                f"{self.batch}: already ingested as version {self.version} of {self.stored} "
                f"(MD5 {self.md5}); nothing changed"
            )
        if self.labelled:
            widened = (
                f"; the suite's statistics took in what the batch moved: "
                f"{'; '.join(self.suite_widened)}"
                if self.suite_widened
                else ""
            )
            return (
                f"{self.batch}: {self.rows} labelled rows appended to {self.stored} as version "
                f"{self.version} ({self.total_rows} rows, MD5 {self.md5}; was "
                f"{self.previous_md5}), tracked by DVC{widened}"
            )
        return (
            f"{self.batch}: {self.rows} unlabelled rows stored at {self.stored} "
            f"(MD5 {self.md5}) for monitoring, tracked by DVC"
        )


def _repo(root: Path):  # type: ignore[no-untyped-def]
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo(str(root))
    except NotDvcRepoError:
        raise DataLoadError(
            f"{root}: not a DVC project; rule: ingest keeps every data version in DVC "
            "(run `dvc init` there)"
        ) from None


def track(root: Path, path: Path) -> str:
    """Record ``path``'s current bytes as a DVC version (``dvc commit`` of the stage that
    outputs it, else ``dvc add``) and return their MD5."""
    from dvc.exceptions import OutputNotFoundError

    target = str(Path(path).resolve())  # DVC reads relative paths from the working dir
    quiet = logging.getLogger("dvc")  # its "git add ..." advice is not this tool's to give
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with _repo(root) as repo, contextlib.redirect_stdout(io.StringIO()):
            try:
                outs = repo.find_outs_by_path(target)
            except OutputNotFoundError:
                outs = []
            if outs and not outs[0].stage.is_data_source:
                repo.commit(outs[0].stage.addressing, force=True)
            else:
                repo.add([target])
    finally:
        quiet.setLevel(level)
    return data.file_md5(Path(path))


def cached_copy(root: Path, md5: str) -> Path | None:
    """The file of MD5 ``md5`` in the project's DVC cache, if it is there."""
    if not (Path(root) / ".dvc").is_dir():
        return None
    with _repo(root) as repo:
        found = Path(repo.cache.local.oid_to_path(md5))
    return found if found.is_file() else None


def history_path(data_path: Path) -> Path:
    return Path(data_path).with_name(Path(data_path).name + ".history.jsonl")


def history(data_path: Path) -> list[dict[str, Any]]:
    """The versions :func:`ingest` made of ``data_path``, oldest first. A last line cut short
    (an append killed mid-write) is no version; a bad line before it is an error."""
    path = history_path(data_path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):  # no newline after it: the append never finished
                LOG.warning("%s: its last line is incomplete (an interrupted ingest)", path)
                continue
            raise DataLoadError(
                f"{path}: line {n} is not a JSON record ({exc}); rule: the history is "
                "append-only, one record a line: restore it from git"
            ) from exc
    return entries


def _append_history(data_path: Path, entry: dict[str, Any]) -> None:
    path = history_path(data_path)
    with path.open("a+b") as out:
        out.seek(0, os.SEEK_END)
        if out.tell():  # drop a last line an interrupted append left without its newline
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":
                out.seek(0)
                out.truncate(out.read().rfind(b"\n") + 1)
        out.write((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        out.flush()
        os.fsync(out.fileno())


@contextlib.contextmanager
def _one_at_a_time(root: Path) -> Iterator[None]:
    """One ingest at a time in a project: concurrent ones would read the same table and
    history, and record the same version twice."""
    import fcntl

    folder = root / ".honing"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / "ingest.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _same_columns(
    batch: pd.DataFrame, table: pd.DataFrame, batch_path: Path, data_path: Path
) -> None:
    for column in batch.columns:
        if column not in table.columns:
            raise DataValidationError(
                f"{batch_path}: column '{column}' is not in {data_path}; rule: a batch has "
                "the training table's columns"
            )
    for column in table.columns:
        if column not in batch.columns:
            raise DataValidationError(
                f"{batch_path}: column '{column}' of {data_path} is missing; rule: a batch "
                "has the training table's columns"
            )


def _appended(data_path: Path, table: pd.DataFrame, batch: pd.DataFrame) -> Path:
    """A temporary file beside ``data_path``: its bytes, then the batch's rows (CSV), or the
    two tables together (Parquet)."""
    tmp = data_path.with_name(f".{data_path.name}.ingest-{os.getpid()}.tmp")
    if data_path.suffix.lower() in (".parquet", ".pq"):
        pd.concat([table, batch[table.columns]], ignore_index=True).to_parquet(tmp, index=False)
        return tmp
    shutil.copyfile(data_path, tmp)
    with tmp.open("rb+") as out:
        out.seek(0, os.SEEK_END)
        if out.tell():
            out.seek(-1, os.SEEK_END)
            if out.read(1) != b"\n":
                out.write(b"\n")
        rows = batch[table.columns].to_csv(header=False, index=False, lineterminator="\n")
        out.write(rows.encode())
    return tmp


@dataclass(frozen=True)
class NewClasses:
    """What a labelled batch brings that the label has never held (:func:`new_classes`):
    the classes taken into the label's value set, with their rows, and the rows held back."""

    taken: dict[Any, int]
    held: pd.Series  # a mask over the batch's rows


def new_classes(
    cfg: PipelineConfig, suite: dict[str, Any], batch: pd.DataFrame, table_rows: int
) -> NewClasses:
    """The classes of ``batch`` the label has never held, and what becomes of them. The
    floor is the rarest class's least share (``validation.quality.min_minority_fraction``).

    - With three classes or more, a new class is a new kind of case (a species first
      trapped in 1995): taken into the label's value set where it reaches the floor in the
      table the batch would make, and learned by the next retrain; a class under it is too
      rare to learn yet, and its rows are held back.
    - With two, a third class changes the task: its rows are held back where they are fewer
      of the batch than the floor (a first goat among the licensed cats and dogs), and the
      label's value set refuses the batch otherwise (a changed labelling)."""
    none = NewClasses({}, pd.Series(False, index=batch.index))
    known = validation.value_set(suite, cfg.data.target) if cfg.task == "classification" else None
    if known is None or batch.empty:
        return none
    labels = batch[cfg.data.target]
    new = ~labels.isin(known)
    floor = cfg.validation.quality.min_minority_fraction
    if not new.any() or (len(known) <= 2 and float(new.mean()) >= floor):
        return none
    if len(known) <= 2:
        return NewClasses({}, new)
    rows = table_rows + len(batch)
    counts = labels[new].value_counts()
    taken = {value: int(n) for value, n in counts.items() if n / rows >= floor}
    return NewClasses(taken, new & ~labels.isin(list(taken)))


def _keep_held(
    cfg: PipelineConfig, held: pd.DataFrame, of: int, name: str, root: Path
) -> tuple[str, str]:
    """Keep the rows :func:`new_classes` held back (``of``: the batch's labelled rows) in a
    DVC-tracked file beside the table, to be ingested once their class is in the label's
    value set; returns the file and the warning that names it."""
    kept = Path(cfg.data.path).parent / "held" / f"{name}-new-classes.csv"
    kept.parent.mkdir(parents=True, exist_ok=True)
    held.to_csv(kept, index=False)
    track(root, kept)
    where = os.path.relpath(kept.resolve(), root)
    counts = held[cfg.data.target].value_counts()
    classes = ", ".join(f"{value!r} {n}" for value, n in counts.items())
    return where, (
        f"{cfg.data.target}: {len(held)} of {of} labelled rows hold a class the label has never "
        f"held ({classes}), too rare to learn yet (the rarest class's least share is "
        f"{cfg.validation.quality.min_minority_fraction:.2%}); they are left out of this "
        f"version and kept in {where}: to train on it, add it to the label's value set in "
        f"{cfg.validation.suite} and ingest that file"
    )


def ingest(cfg: PipelineConfig, batch_path: Path, *, repo: Path) -> Ingested:
    """Validate the batch at ``batch_path`` and keep it as a data version (see the module).
    Refuses, changing nothing, a batch that breaks the suite or the rules; a batch already
    ingested changes nothing either (its version is returned, ``new`` False)."""
    root = Path(repo).resolve()
    with _one_at_a_time(root):
        return _ingest(cfg, Path(batch_path), root)


def _ingest(cfg: PipelineConfig, batch_path: Path, root: Path) -> Ingested:
    data_path = Path(cfg.data.path)
    suite = validation.load_suite(cfg.validation.suite)
    text = validation.text_columns(suite)
    batch = data.load_table(batch_path, cfg.data, text=text)
    batch_md5 = data.file_md5(batch_path)
    rel = lambda p: os.path.relpath(Path(p).resolve(), root)  # noqa: E731
    target = cfg.data.target
    if target not in batch.columns or batch[target].isna().all():
        report = inference.check_inference(
            batch.drop(columns=[target], errors="ignore"),
            suite,
            target=target,
            drop_columns=cfg.identifiers,
            source=str(batch_path),
        )
        validation.gate(report)
        name = f"{batch_path.stem}-{batch_md5[:8]}{batch_path.suffix}"
        stored = data_path.parent / "batches" / name
        if not stored.exists():
            stored.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(batch_path, stored)
        md5 = track(root, stored)
        return Ingested(
            batch=rel(batch_path), batch_md5=batch_md5, rows=len(batch), labelled=False,
            stored=rel(stored), md5=md5, previous_md5=None, version=None, total_rows=len(batch),
        )  # fmt: skip
    done = [v for v in history(data_path) if v.get("batch_md5") == batch_md5]
    if done:  # a batch is ingested once: again, nothing changes
        known = {k: v for k, v in done[0].items() if k in Ingested.__dataclass_fields__}
        return Ingested(**{**known, "new": False})
    table = data.load_table(data_path, cfg.data, text=text)
    _same_columns(batch, table, batch_path, data_path)
    # rows whose label has not arrived yet cannot train: the labelled ones make the version
    blank = batch[target].isna()
    batch = batch[~blank]
    left_out = (
        [f"{target}: {int(blank.sum())} of {len(blank)} rows have no label yet; they are left "
         "out of this version (send them in a later batch once they are labelled)"]
        if blank.any() else []
    )  # fmt: skip
    classes = new_classes(cfg, suite, batch, len(table))
    held, batch = batch[classes.held], batch[~classes.held]
    if classes.taken:  # recorded below with what the statistics took in
        suite = validation.with_values(suite, target, plain(list(classes.taken)))
    combined = pd.concat([table, batch[table.columns]], ignore_index=True)
    report = validation.validate(
        combined, suite, source=str(batch_path), rules=validation.QualityRules.from_config(cfg)
    )
    validation.gate(report)  # contracts refuse; statistics the world moved are taken in
    widened, changes = profiling.widen_suite(suite, combined, report.failures)
    if classes.taken:
        taken = ", ".join(f"{value!r} ({n} rows)" for value, n in classes.taken.items())
        changes = [f"{target}: new classes in the label's value set: {taken}", *changes]
    kept = None
    if len(held):
        of = len(classes.held)
        kept, note = _keep_held(cfg, held, of, f"{batch_path.stem}-{batch_md5[:8]}", root)
        left_out.append(note)
    previous = data.file_md5(data_path)
    if cached_copy(root, previous) is None:
        track(root, data_path)  # the version before stays fetchable
    tmp = _appended(data_path, table, batch)
    try:
        os.replace(tmp, data_path)
    finally:
        tmp.unlink(missing_ok=True)
    md5 = track(root, data_path)
    version = len(history(data_path)) + 1
    entry = Ingested(
        batch=rel(batch_path), batch_md5=batch_md5, rows=len(batch), labelled=True,
        stored=rel(data_path), md5=md5, previous_md5=previous, version=version,
        total_rows=len(combined), held=kept,
        warnings=left_out
        + [f"{f.column or '<table>'}: {f.rule}: {f.details}" for f in report.failures],
        suite_widened=changes,
    )  # fmt: skip
    if changes:  # recorded with the version below; the suite file is the project's to commit
        validation.save_suite(widened, cfg.validation.suite)
    _append_history(data_path, {**entry.to_dict(), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return entry
