from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from honing.data import clean, encode_target, file_md5, load_table, split_data, write_table
from honing.data.reading import TableReading
from honing.data.watch import detect_changes
from honing.exceptions import DataLoadError, DataValidationError


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "color": rng.choice(["red", "blue"], size=n),
            "label": np.where(np.arange(n) % 4 == 0, "yes", "no"),
        }
    )


def test_load_csv_and_parquet_round_trip(tmp_path: Path):
    df = _frame()
    for name in ("t.csv", "t.parquet"):
        write_table(df, tmp_path / name)
        back = load_table(tmp_path / name)
        pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_markers_of_missing_values_are_read_as_missing_in_csv_and_parquet(tmp_path: Path):
    """``data.missing_values``: a column of numbers with "." for its missing ones reads as
    numbers; a marker in a text column reads as missing too, and other text is kept."""
    csv = tmp_path / "t.csv"
    csv.write_text("glucose,city,code\n5.5,Oslo,0501\n.,.,0602\n7.25,?,.\n-999,Bergen,0703\n")
    plain = load_table(csv, text=["code"])
    assert plain["glucose"].dtype == object  # "." keeps the numbers as text
    read = load_table(csv, TableReading(missing_values=[".", "?", "-999"]), text=["code"])
    assert read["glucose"].dtype.kind == "f"
    assert read["glucose"].isna().tolist() == [False, True, False, True]
    assert read["city"].tolist()[0] == "Oslo" and read["city"].isna().tolist()[1:3] == [True, True]
    assert read["code"].tolist()[:2] == ["0501", "0602"] and pd.isna(read["code"][2])

    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"size": [1.5, 2.0], "grade": ["A", "."]}).to_parquet(parquet)
    back = load_table(parquet, TableReading(missing_values=["."]))
    assert back["size"].tolist() == [1.5, 2.0] and back["grade"].isna().tolist() == [False, True]


def test_a_marker_is_read_as_missing_whatever_the_spaces_around_it(tmp_path):
    """A CSV written `1.5, .` holds the cell ` .`, which a CSV reader's own markers do not
    match: every reader of the table still reads it as missing, and its column as numbers
    (separators too); the text columns keep their values, spaces and all, and a column
    named as text stays text."""
    path = tmp_path / "t.csv"
    path.write_text('a,b,c,d\n1.5, .,x,"1,200"\n2.5, 3,., .\n3.5,4, y,"2,000"\n')
    reading = TableReading("auto", ["."], ",")
    df = load_table(path, reading)
    assert df["a"].tolist() == [1.5, 2.5, 3.5]
    assert df["b"].dtype == "float64" and df["b"].isna().tolist() == [True, False, False]
    assert df["d"].tolist()[::2] == [1200.0, 2000.0] and np.isnan(df["d"][1])
    assert df["c"].tolist()[::2] == ["x", " y"] and pd.isna(df["c"][1])
    named = load_table(path, reading, text=["b"])["b"]
    assert pd.isna(named[0]) and named.tolist()[1:] == [" 3", "4"]
    parquet = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"b": ["1", " .", "2"], "c": ["x", ".", "y"]}), parquet)
    df = load_table(parquet, TableReading("auto", ["."], None))
    assert df["b"].tolist()[::2] == [1.0, 2.0] and df["c"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "empty"),
        (b"a,b,label\n", "no rows"),
        (b"a,b\n1,2\n\xff\xfe,3\n", "UTF-8"),
        (b'a,b\n1,"2\n', "well-formed"),
        (b"a,a,b\n1,2,3\n", "duplicated column"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, content: bytes, rule: str):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataLoadError) as exc:
        load_table(path)
    assert str(path) in str(exc.value)
    assert rule in str(exc.value)


def test_directories_and_link_loops_are_named_as_such(tmp_path: Path):
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "x.csv").symlink_to(tmp_path / "y.csv")
    (tmp_path / "y.csv").symlink_to(tmp_path / "x.csv")
    with pytest.raises(DataLoadError, match="is a directory"):
        load_table(tmp_path / "dir.csv")
    with pytest.raises(DataLoadError, match="symbolic-link loop"):
        load_table(tmp_path / "x.csv")


def test_a_parquet_list_column_is_refused_by_name(tmp_path: Path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1, 2], "tags": [[1, 2], [3]], "y": [0, 1]}).to_parquet(path)
    with pytest.raises(DataLoadError, match=r"\['tags'\] hold lists"):
        load_table(path)


def test_a_genuine_dotted_column_name_is_not_a_duplicate(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("tenure,tenure.1,label\n1,2,0\n3,4,1\n")
    assert list(load_table(path).columns) == ["tenure", "tenure.1", "label"]


def test_missing_file_and_unknown_suffix(tmp_path: Path):
    with pytest.raises(DataLoadError, match="not found"):
        load_table(tmp_path / "missing.csv")
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(DataLoadError, match="format"):
        load_table(odd)


def test_corrupt_parquet(tmp_path: Path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataLoadError, match="parquet"):
        load_table(path)


def test_write_table_never_overwrites_by_default(tmp_path: Path):
    path = write_table(_frame(), tmp_path / "t.csv")
    before = file_md5(path)
    with pytest.raises(FileExistsError):
        write_table(_frame(5), path)
    assert file_md5(path) == before
    write_table(_frame(5), path, overwrite=True)
    assert file_md5(path) != before


def test_clean_drops_duplicates_and_null_labels():
    df = _frame(10)
    dirty = pd.concat([df, df.iloc[:3]], ignore_index=True)
    dirty.loc[5, "label"] = None
    out, report = clean(dirty, "label")
    assert report.rows_in == 13
    assert report.duplicates_dropped == 3
    assert report.invalid_labels_dropped == 1
    assert report.rows_out == len(out) == 9
    assert not out.duplicated().any() and out["label"].notna().all()


def test_encode_target_maps_positive_label():
    codes, classes = encode_target(pd.Series(["no", "yes", "no"], name="y"), "yes")
    assert codes.tolist() == [0, 1, 0]
    assert classes == ["no", "yes"]
    with pytest.raises(DataValidationError, match="not among"):
        encode_target(pd.Series(["no", "yes"], name="y"), "maybe")
    with pytest.raises(DataValidationError, match="2 to 100 label values"):
        encode_target(pd.Series(["a", "a"], name="y"), None)
    with pytest.raises(DataValidationError, match="2 to 100 label values"):
        encode_target(pd.Series(range(101), name="y"), None)


def test_split_is_deterministic_and_stratified():
    df = _frame(200)
    a, classes = split_data(
        df,
        "label",
        positive_label="yes",
        drop_columns=["id"],
        test_size=0.25,
        seed=3,
        task="classification",
    )
    b, _ = split_data(
        df,
        "label",
        positive_label="yes",
        drop_columns=["id"],
        test_size=0.25,
        seed=3,
        task="classification",
    )
    pd.testing.assert_frame_equal(a.X_test, b.X_test)
    assert "id" not in a.X_train.columns and "label" not in a.X_train.columns
    assert len(a.X_test) == 50
    assert a.y_test.mean() == pytest.approx(df["label"].eq("yes").mean(), abs=0.02)
    assert classes == ["no", "yes"]


def test_file_md5_matches_hashlib(tmp_path: Path):
    import hashlib

    path = tmp_path / "f.bin"
    path.write_bytes(b"honing" * 1000)
    assert file_md5(path) == hashlib.md5(b"honing" * 1000).hexdigest()


def test_a_batchs_labels_are_coded_in_the_models_label_order():
    """A labelled batch may hold two of three classes, a label the model never saw, or rows
    without a label: its codes follow the model's classes, not the batch's own."""
    import numpy as np
    import pandas as pd

    from honing.data import labelled_rows

    classes = ["Adelie", "Chinstrap", "Gentoo"]
    labels = pd.Series(["Gentoo", "Adelie", None, "Emperor", "Gentoo"])
    codes, known = labelled_rows(labels, classes)
    assert codes.tolist() == [2, 0, 2] and known.tolist() == [True, True, False, False, True]
    values, known = labelled_rows(pd.Series([1.5, np.nan, 2.0]), [])
    assert values.tolist() == [1.5, 2.0] and known.tolist() == [True, False, True]


def test_detect_changes_records_a_baseline_then_reports_changes(tmp_path: Path):
    data, state = tmp_path / "d.csv", tmp_path / "state.json"
    data.write_text("a\n1\n")
    assert detect_changes([data, tmp_path / "missing.csv"], state) == []
    assert detect_changes([data], state) == []
    data.write_text("a\n2\n")
    changes = detect_changes([data], state)
    assert [c.path for c in changes] == [str(data)] and changes[0].old_md5 != changes[0].new_md5
    assert detect_changes([data], state) == []


def test_a_multiclass_batch_is_scored_over_the_classes_the_model_never_learned():
    """Monitoring measures a champion on every labelled row of a batch: among three classes
    or more, a species it never learned is scored too (and it answers 0 there), after its
    own classes in its own order; a binary model keeps its two."""
    from honing.data import labelled_rows
    from honing.data.target import with_new_classes

    catch = pd.Series(["DM", "PB", "DO", None, "PB", "RO", "PP"])
    scored = with_new_classes(["DM", "DO", "PP"], catch)
    assert scored == ["DM", "DO", "PP", "PB", "RO"]
    codes, known = labelled_rows(catch, scored)
    assert codes.tolist() == [0, 3, 1, 3, 4, 2] and known.sum() == 6
    assert with_new_classes(["Cat", "Dog"], pd.Series(["Cat", "Goat"])) == ["Cat", "Dog"]
