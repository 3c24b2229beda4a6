"""Loading, versioning, cleaning and splitting tabular data. Pure functions over DataFrames.

The package also holds the window policy (:mod:`~honing.data.windowing`), the validation splits
(:mod:`~honing.data.folds`), what ``honing init`` reads from the label
(:mod:`~honing.data.target`), the demo tables (:mod:`~honing.data.demo_data`) and what the
data watcher checks (:mod:`~honing.data.watch`)."""

from __future__ import annotations

import csv
import errno
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from honing.data.reading import Reading, TableReading, as_csv_types, blank_markers
from honing.data.text_numbers import separated_numbers
from honing.exceptions import (
    DataLoadError,
    DataNotFoundError,
    DataValidationError,
    OutputExistsError,
)


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes: the same content hash DVC 3 records in ``dvc.lock``."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _detect_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    raise DataLoadError(
        f"{path}: cannot tell the format from the suffix '{suffix}'; "
        "rule: use .csv or .parquet, or set data.format"
    )


def _check_is_file(path: Path) -> None:
    """A clear error for what is not a readable file: missing (may still be syncing, so a
    retry may help), a directory, a symbolic-link loop or a dangling link."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataLoadError(f"{path}: symbolic-link loop; rule: data must be a file") from exc
        if path.is_symlink():
            raise DataLoadError(f"{path}: dangling symbolic link to {path.readlink()}") from exc
        raise DataNotFoundError(f"{path}: file not found") from exc
    if path.is_dir():
        raise DataLoadError(f"{path}: is a directory; rule: data must be one CSV or Parquet file")
    if not path.is_file():
        raise DataLoadError(f"{path}: not a regular file; rule: data must be a file")


def load_table(
    path: Path, how: str | Reading = "auto", *, text: Collection[str] = ()
) -> pd.DataFrame:
    """Read a CSV or Parquet file, turning every reader failure into a :class:`DataLoadError`.
    ``how``: the format, or the pipeline's :class:`~honing.data.reading.Reading` (its
    config's ``data``: the format, the cell values read as missing, the thousands separator
    of a CSV file's numbers). ``text``: columns a CSV file's reader keeps as text whatever
    their values look like (the ones a suite types as text:
    :func:`honing.validation.text_columns`), where it would guess numbers from a batch of
    digits only."""
    path = Path(path)
    reading = TableReading(how) if isinstance(how, str) else how
    _check_is_file(path)
    if path.stat().st_size == 0:
        raise DataLoadError(f"{path}: file is empty (0 bytes); rule: a header and rows are needed")
    kind = _detect_format(path, reading.format)
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(
                path,
                encoding="utf-8",
                dtype=dict.fromkeys(text, str) or None,
                na_values=list(reading.missing_values) or None,
                thousands=reading.thousands,
            )
        df = blank_markers(df, reading.missing_values, reading.thousands, keep_text=text)
    except UnicodeDecodeError as exc:
        raise DataLoadError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "rule: CSV files must be UTF-8"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise DataLoadError(f"{path}: not a well-formed CSV file: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise DataLoadError(f"{path}: cannot read as {kind}: {exc}") from exc
    dupes = _duplicated_header(path) if kind == "csv" else []
    if dupes:
        raise DataLoadError(
            f"{path}: duplicated column name(s) {sorted(dupes)}; rule: column names must be unique"
        )
    if df.empty:
        raise DataLoadError(f"{path}: has a header but no rows; rule: at least one row is needed")
    nested = _nested_columns(df)
    if nested:
        raise DataLoadError(
            f"{path}: column(s) {nested} hold lists, arrays or mappings; rule: every cell "
            "must be a single value (flatten those columns, or remove them from the file)"
        )
    if kind == "csv":
        _check_csv_shape(path, df)
    return df if kind == "csv" else as_csv_types(df)


def _nested_columns(df: pd.DataFrame) -> list[str]:
    """Object columns whose values are containers (Parquet list or struct columns)."""
    out = []
    for name in df.select_dtypes(include="object").columns:
        values = df[name].dropna()
        if len(values) and isinstance(values.iloc[0], list | tuple | dict | set | np.ndarray):
            out.append(str(name))
    return out


def _duplicated_header(path: Path) -> list[str]:
    """Names the CSV header repeats, read from the header itself: pandas renames a repeat
    ``x`` to ``x.1``, which a genuine column named ``x.1`` must not be mistaken for."""
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), [])
    from collections import Counter

    return sorted(name for name, count in Counter(header).items() if count > 1)


def _check_csv_shape(path: Path, df: pd.DataFrame) -> None:
    """Catch what pandas reads silently: another delimiter, and a truncated last row."""
    if df.shape[1] == 1:
        header = str(df.columns[0])
        for sep in (";", "\t", "|"):
            if sep in header:
                raise DataLoadError(
                    f"{path}: read as one column {header[:60]!r}, which looks delimited by "
                    f"{sep!r}; rule: files are comma-separated"
                )
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 65536))
        tail = fh.read().decode("utf-8", errors="replace").splitlines()
    last = next((line for line in reversed(tail) if line.strip()), "")
    if '"' in last:  # a quoted field may span lines: the last line alone proves nothing
        return
    fields = next(csv.reader([last]), [])
    if 0 < len(fields) < df.shape[1]:
        raise DataLoadError(
            f"{path}: last row has {len(fields)} of {df.shape[1]} fields (column "
            f"'{df.columns[len(fields)]}' onwards missing); rule: every row has every column - "
            "is the file truncated?"
        )


def write_table(df: pd.DataFrame, path: Path, *, overwrite: bool = False) -> Path:
    """Write a table; refuses to replace an existing file unless ``overwrite`` is set."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; refusing to overwrite data")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix.lower() in (".parquet", ".pq"):
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(path)  # atomic: a crash never leaves half a file behind
    return path


def ensure_new(path: Path, *, force: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """``path`` when an output may be written there: nothing is there yet, or ``force`` is
    set. Never one of the command's own ``inputs`` (the data, the config), even forced."""
    path = Path(path)
    for source in inputs:
        same = Path(source).exists() and path.exists() and path.samefile(source)
        if same or path.resolve() == Path(source).resolve():
            raise OutputExistsError(
                f"{path}: rule: refusing to overwrite the command's own input ({source}), "
                "even with --force"
            )
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputExistsError(
            f"{path}: already exists; refusing to overwrite it (pass --force to replace it)"
        )
    if force and path.is_dir():
        raise OutputExistsError(f"{path}: is a directory; an output is a file")
    return path


def write_new(text: str, path: Path, *, force: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """Write a report atomically where :func:`ensure_new` allows it."""
    path = ensure_new(path, force=force, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class CleaningReport:
    rows_in: int
    duplicates_dropped: int
    invalid_labels_dropped: int
    rows_out: int


def clean(
    df: pd.DataFrame,
    target: str,
    *,
    deduplicate: bool = True,
    drop_invalid_labels: bool = True,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop exact duplicate rows and rows whose label is missing."""
    rows_in = len(df)
    out = df
    dups = 0
    if deduplicate:
        mask = out.duplicated(keep="first")
        dups = int(mask.sum())
        out = out.loc[~mask]
    bad = 0
    if drop_invalid_labels:
        mask = out[target].isna()
        bad = int(mask.sum())
        out = out.loc[~mask]
    out = out.reset_index(drop=True)
    return out, CleaningReport(rows_in, dups, bad, len(out))


#: More label values than this is not a classification target (a regression one, or an id).
MAX_CLASSES = 100


def class_labels(y: pd.Series, positive_label: object | None = None) -> list:
    """The sorted label values of a classification target, checked: 2 to
    :data:`MAX_CLASSES` of them, and a positive label only for a binary target."""
    labels = sorted(pd.unique(y.dropna()), key=str)
    if len(labels) < 2 or len(labels) > MAX_CLASSES:
        hint = "a numeric target may be task regression"
        if len(labels) > 2 and separated_numbers(y):
            hint = (
                "its values are numbers written with thousands separators, read as text: "
                "set data.thousands: ',' (honing init does) or write them as plain numbers "
                "(100000, not 100,000) for a regression target"
            )
        raise DataValidationError(
            f"column '{y.name}': classification needs 2 to {MAX_CLASSES} label values, "
            f"found {len(labels)}: {labels[:10]} ({hint})"
        )
    if len(labels) > 2 and positive_label is not None:
        raise DataValidationError(
            f"column '{y.name}': positive_label applies to binary targets; this one has "
            f"{len(labels)} label values {labels[:10]}"
        )
    return labels


def encode_target(y: pd.Series, positive_label: object | None) -> tuple[np.ndarray, list]:
    """Map labels to codes. Binary: 0/1 (``positive_label`` -> 1), returning the codes and
    ``[negative, positive]``. Multiclass (more than two values): codes in the order of the
    sorted labels, returned with that order."""
    labels = class_labels(y, positive_label)
    if len(labels) > 2:
        codes = {label: i for i, label in enumerate(labels)}
        return y.map(codes).to_numpy(dtype=np.int64), labels
    if positive_label is None:
        positive_label = labels[1]
    if positive_label not in labels:
        raise DataValidationError(
            f"column '{y.name}': positive_label {positive_label!r} is not among the labels {labels}"
        )
    negative = next(label for label in labels if label != positive_label)
    return (y == positive_label).to_numpy(dtype=np.int64), [negative, positive_label]


def target_values(
    y: pd.Series, task: str, positive_label: object | None
) -> tuple[np.ndarray, list]:
    """Labels as the model sees them: 0/1 codes and ``[negative, positive]`` for binary
    classification, codes and the sorted labels for multiclass, finite floats and ``[]``
    for regression (whose target must be numeric)."""
    if task != "regression":
        return encode_target(y, positive_label)
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise DataValidationError(
            f"column '{y.name}': regression needs a numeric target, found dtype {y.dtype}"
        )
    values = y.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataValidationError(
            f"column '{y.name}': regression target has non-finite values; rule: finite"
        )
    return values, []


def labelled_rows(labels: pd.Series, classes: list) -> tuple[np.ndarray, np.ndarray]:
    """A batch's labels as a model of ``classes`` (its label order; ``[]``: regression)
    answers them: the codes (or values) of the rows that have a label the model knows, and
    which rows those are. A batch holding some of the classes only keeps their codes."""
    if not classes:
        known = labels.notna().to_numpy()
        return labels[known].to_numpy(dtype=np.float64), known
    coded = labels.map({c: i for i, c in enumerate(classes)})
    known = coded.notna().to_numpy()
    return coded[known].to_numpy(dtype=np.int64), known


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    #: The training rows' groups (``split.group_column``), None without groups.
    groups_train: np.ndarray | None = None


def split_data(
    df: pd.DataFrame,
    target: str,
    *,
    positive_label: object | None,
    drop_columns: list[str],
    test_size: float,
    seed: int,
    task: str,
    time_column: str | None = None,
    group_column: str | None = None,
) -> tuple[Split, list]:
    """Deterministic train/test split, stratified by label for classification; with
    ``time_column``, the most recent ``test_size`` of the rows (by that column, parsed as
    dates when it is text) are the test split and the earlier ones the training split; with
    ``group_column``, about ``test_size`` of the groups are the test split, all their rows
    (the column is then no feature: its values are kept in ``Split.groups_train``).
    Returns the split and the label order (``[]`` for regression, whose target must be
    numeric)."""
    y, classes = target_values(df[target], task, positive_label)
    groups = None if group_column is None else group_values(df, group_column)
    dropped = [target, *drop_columns, *([group_column] if group_column else [])]
    X = df.drop(columns=[c for c in dict.fromkeys(dropped) if c in df.columns])
    if time_column is not None:
        X_train, X_test, y_train, y_test = _forward_split(df, X, y, time_column, test_size)
        train = None
    else:
        if groups is not None:
            codes = y if classes else None
            train, test = group_holdout_rows(groups, test_size, seed=seed, codes=codes)
        else:
            train, test = holdout_rows(y, test_size, seed=seed, stratify=bool(classes))
        X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]
    return (
        Split(
            X_train.reset_index(drop=True),
            X_test.reset_index(drop=True),
            y_train,
            y_test,
            groups_train=None if groups is None or train is None else groups[train],
        ),
        classes,
    )


def group_values(df: pd.DataFrame, column: str) -> np.ndarray:
    """The group of every row, as integer codes of ``df[column]`` (``split.group_column``):
    every row needs one."""
    if column not in df.columns:
        raise DataValidationError(f"column '{column}': split.group_column is not in the data")
    missing = int(df[column].isna().sum())
    if missing:
        raise DataValidationError(
            f"column '{column}': {missing} rows have no group; rule: split.group_column "
            "needs a value on every row"
        )
    return pd.factorize(df[column], sort=True)[0]


def pinned_rows(groups: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
    """Rows that every group split keeps on its training side: with class ``codes``, the
    rows of each group that holds a class no other group has (a model must see every class,
    as a class with a single row stays in training under a stratified split)."""
    if codes is None:
        return np.zeros(len(groups), dtype=bool)
    pairs = np.unique(np.column_stack([np.asarray(codes, dtype=np.int64), groups]), axis=0)
    classes, spread = np.unique(pairs[:, 0], return_counts=True)
    lonely = set(classes[spread < 2].tolist())
    held_groups = {g for c, g in pairs.tolist() if c in lonely}
    return np.isin(groups, list(held_groups))


def group_holdout_rows(
    groups: np.ndarray, share: float, *, seed: int, codes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (train, held out) with about ``share`` of the groups held out, all the
    rows of each group on one side (``codes``: a group that alone holds a class stays in
    training, see :func:`pinned_rows`). Fewer than two groups cannot be split."""
    from sklearn.model_selection import GroupShuffleSplit

    rows = np.arange(len(groups))
    pinned = pinned_rows(groups, codes)
    if len(np.unique(groups[~pinned])) < 2:
        raise DataValidationError(
            "split.group_column: fewer than two groups can be held out; rule: at least two "
            "groups (and, for classification, classes that more than one group holds)"
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
    pool = rows[~pinned]
    train, held = next(splitter.split(pool.reshape(-1, 1), groups=groups[~pinned]))
    return np.sort(np.concatenate([pool[train], rows[pinned]])), np.sort(pool[held])


def holdout_rows(
    y: np.ndarray, test_size: float, *, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a deterministic holdout split: (train, held out), in the order
    ``train_test_split`` gives them. ``stratify`` (class codes): the label shares are kept,
    and a class with a single row stays on the training side, where a model can learn it
    (it cannot be stratified, and a class a model never saw breaks its probabilities)."""
    # imported here: the data watcher's checks import this package, and no model library
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    if not stratify:
        return tuple(train_test_split(rows, test_size=test_size, random_state=seed))  # type: ignore[return-value]
    codes = np.asarray(y, dtype=int)
    single = np.bincount(codes)[codes] < 2
    train, test = train_test_split(
        rows[~single], test_size=test_size, random_state=seed, stratify=codes[~single]
    )
    return np.concatenate([train, rows[single]]), test


def time_values(df: pd.DataFrame, column: str, key: str) -> pd.Series:
    """``df[column]`` as times (numbers as they are, text parsed as dates); ``key`` is the
    config key that named the column, for the error when a row has no time."""
    if column not in df.columns:
        raise DataValidationError(f"column '{column}': {key} is not in the data")
    when = df[column]
    if not (pd.api.types.is_numeric_dtype(when) or pd.api.types.is_datetime64_any_dtype(when)):
        when = pd.to_datetime(when, errors="coerce")
    if when.isna().any():
        raise DataValidationError(
            f"column '{column}': {int(when.isna().sum())} rows have no time; rule: "
            f"{key} must order every row"
        )
    return when


def _forward_split(
    df: pd.DataFrame, X: pd.DataFrame, y: np.ndarray, column: str, test_size: float
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows ordered by ``column`` (stable: ties keep the file's order); the last
    ``test_size`` of them are the test split."""
    when = time_values(df, column, "split.time_column")
    order = np.argsort(when.to_numpy(), kind="stable")
    cut = len(order) - max(1, int(round(test_size * len(order))))
    train, test = order[:cut], order[cut:]
    y = np.asarray(y)
    return X.iloc[train], X.iloc[test], y[train], y[test]
