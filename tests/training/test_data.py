"""Dataset loaders: FER2013 CSV (plain and gzip), image folders, FER+ votes, caching."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from src import config
from src.training.data import (
    DatasetError,
    collect_dataset,
    ferplus_majority,
    load_cached,
    load_dataset,
    load_fer_csv,
    load_ferplus,
    load_image_folder,
    resolve_dataset_path,
)


def test_csv_loader_reads_every_split_and_class(fer_csv):
    data = load_fer_csv(fer_csv)
    frame = pd.read_csv(fer_csv)
    assert data.images.shape == (len(frame), 48, 48)
    assert data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.labels, frame["emotion"].to_numpy())
    first = np.array(frame["pixels"][0].split(), dtype=np.uint8).reshape(48, 48)
    np.testing.assert_array_equal(data.images[0], first)
    for usage, group in frame.groupby("Usage"):
        counts = group["emotion"].value_counts()
        assert data.split(usage).class_counts() == {name: int(counts[k]) for k, name in enumerate(config.EMOTIONS)}
    assert set(data.usage) == {"Training", "PublicTest", "PrivateTest"}
    # Short split names map onto the FER2013 ones.
    assert len(data.split("test")) == len(data.split("PrivateTest"))


def test_gzip_csv_matches_plain(fer_csv, tmp_path):
    gz = tmp_path / "fer2013.csv.gz"
    with open(fer_csv, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain, zipped = load_fer_csv(fer_csv), load_dataset(gz)
    np.testing.assert_array_equal(plain.images, zipped.images)
    np.testing.assert_array_equal(plain.labels, zipped.labels)
    np.testing.assert_array_equal(plain.usage, zipped.usage)


def test_folder_with_csv_attaches_aligned_ferplus(fer_dir):
    data = load_dataset(fer_dir)
    assert data.ferplus is not None and data.ferplus.shape == (len(data), 7)
    plus = pd.read_csv(fer_dir / "fer2013new.csv")
    dropped = plus["Image name"].isna().to_numpy()
    assert dropped.any()
    assert (data.ferplus[dropped] == 0).all()
    # Votes are re-ordered into FER2013 class order: the 'happiness' column lands on 'happy'.
    happy = config.EMOTIONS.index("happy")
    np.testing.assert_array_equal(data.ferplus[~dropped, happy], plus.loc[~dropped, "happiness"].to_numpy())


def test_ferplus_majority_on_aligned_votes(fer_dir):
    data = load_dataset(fer_dir)
    majority = ferplus_majority(data.ferplus)
    index = np.arange(len(data))
    dropped = index % 7 == 3
    tied = (index % 5 == 1) & ~dropped
    clear = ~dropped & ~tied
    assert (majority[dropped] == -1).all()
    assert (majority[tied] == -1).all()
    np.testing.assert_array_equal(majority[clear], data.labels[clear])


def test_ferplus_majority_needs_strict_majority():
    votes = np.zeros((4, 7), np.float32)
    votes[0, 2] = 6
    votes[0, 5] = 4  # 6 of 10: majority for class 2
    votes[1, 1] = votes[1, 4] = 5  # 5 of 10 is not a strict majority
    votes[2, 3] = 1  # a lone vote is a majority of one
    majority = ferplus_majority(votes)
    np.testing.assert_array_equal(majority, [2, -1, 3, -1])


def test_image_folder_loader_matches_classes_and_carves_validation(image_folder):
    data = load_image_folder(image_folder)
    assert set(data.usage) == {"Training", "PublicTest", "PrivateTest"}
    assert data.split("PrivateTest").class_counts() == {name: 3 for name in config.EMOTIONS}
    # 10 per class in train/, a stratified 10% of each becomes PublicTest.
    assert data.split("PublicTest").class_counts() == {name: 1 for name in config.EMOTIONS}
    assert data.split("Training").class_counts() == {name: 9 for name in config.EMOTIONS}
    assert any("contempt" in note for note in data.notes)
    assert any("PublicTest" in note for note in data.notes)
    again = load_image_folder(image_folder)
    np.testing.assert_array_equal(data.usage, again.usage)  # the carve is seeded


def test_load_cached_round_trip_keeps_ferplus(fer_dir, tmp_path):
    first = load_cached(fer_dir, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = load_cached(fer_dir, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.usage, second.usage)
    np.testing.assert_array_equal(first.ferplus, second.ferplus)


def test_collect_copies_a_valid_dataset(fer_dir, tmp_path):
    dest = collect_dataset(fer_dir, tmp_path / "datasets" / "fer2013")
    assert (dest / "fer2013.csv").exists() and (dest / "fer2013new.csv").exists()
    assert len(load_dataset(dest)) == len(load_dataset(fer_dir))


def test_collect_rejects_an_invalid_source(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError):
        collect_dataset(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "fer2013.csv"
    pd.DataFrame({"emotion": [0], "pixels": [" ".join(["0"] * 2304)]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"lacks columns \['Usage'\]"):
        load_fer_csv(path)


def test_not_a_csv_is_a_dataset_error(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(DatasetError):
        load_fer_csv(path)


def test_bad_pixel_count_and_labels_are_reported(tmp_path):
    path = tmp_path / "short.csv"
    pd.DataFrame({"emotion": [0], "pixels": ["1 2 3"], "Usage": ["Training"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="48x48"):
        load_fer_csv(path)
    path = tmp_path / "labels.csv"
    pd.DataFrame({"emotion": [9], "pixels": [" ".join(["0"] * 2304)], "Usage": ["Training"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="outside 0..6"):
        load_fer_csv(path)
    path = tmp_path / "usage.csv"
    pd.DataFrame({"emotion": [0], "pixels": [" ".join(["0"] * 2304)], "Usage": ["Holdout"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="Holdout"):
        load_fer_csv(path)


def test_misaligned_ferplus_is_refused(fer_dir, tmp_path):
    shutil.copy2(fer_dir / "fer2013.csv", tmp_path / "fer2013.csv")
    plus = pd.read_csv(fer_dir / "fer2013new.csv")
    plus.iloc[:-1].to_csv(tmp_path / "fer2013new.csv", index=False)
    with pytest.raises(DatasetError, match="not aligned"):
        load_dataset(tmp_path)
    plus.drop(columns=["fear"]).to_csv(tmp_path / "votes.csv", index=False)
    with pytest.raises(DatasetError, match="fear"):
        load_ferplus(tmp_path / "votes.csv")


def test_dataset_is_the_given_path_or_the_one_under_inputs(tmp_path, monkeypatch, fer_csv):
    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "datasets")
    assert resolve_dataset_path(fer_csv) == fer_csv
    # Nothing else is searched: the message says how to provide a dataset.
    with pytest.raises(DatasetError, match=r"--data PATH .*src\.cli collect"):
        resolve_dataset_path()
    shutil.copytree(fer_csv.parent, tmp_path / "datasets" / "fer2013")
    assert resolve_dataset_path() == tmp_path / "datasets" / "fer2013"
    assert len(load_dataset()) == len(load_dataset(fer_csv))


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no train/<class>/"):
        load_dataset(tmp_path / "empty")
