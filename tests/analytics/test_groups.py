"""Emotion groups (src/analytics/groups/): parsing, every validation message, membership, files, sentiment."""

from __future__ import annotations

import math
import textwrap
import tomllib

import numpy as np
import pandas as pd
import pytest

from src import config
from src.analytics import aggregates, groups
from src.analytics.groups import Group, GroupError, Grouping, GroupSet
from src.engine.results import table_columns

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SHIPPED = config.ROOT / "inputs" / "emotion_groups.toml"

EXAMPLE = GroupSet(
    (
        groups.builtin_sentiment(),
        Grouping(
            "custom",
            (Group("frustrated", ("angry", "disgust", "sad")), Group("delighted", ("happy",), 0.7)),
        ),
    )
)


def problems(parse, text: str, *args) -> list[str]:
    with pytest.raises(GroupError) as info:
        parse(text, *args)
    return info.value.problems


def frame(faces: list[tuple[str, float]], extra_rows: int = 0) -> pd.DataFrame:
    """A per-face results table (analytics' columns): one row per (emotion, confidence), plus faceless files."""
    rows = []
    for i, (emotion, conf) in enumerate(faces):
        rest = (1 - conf) / (len(CLASSES) - 1)
        probs = {c: (conf if c == emotion else rest) for c in CLASSES}
        rows.append({"file": f"{i}.jpg", "face": 0, "emotion": emotion, "confidence": conf, **probs, "status": "ok"})
    for i in range(extra_rows):
        rows.append({"file": f"none{i}.jpg", "emotion": "", "status": "no_face"})
    df = pd.DataFrame(rows, columns=list(table_columns(CLASSES)))
    for col in ("emotion", "status", "error", "file"):
        df[col] = df[col].astype(object).fillna("").astype(str)
    return df


@pytest.fixture
def active_file(monkeypatch):
    """Point FER_GROUPS_FILE elsewhere for one test; the process-wide set is re-read afterwards."""

    def use(path):
        monkeypatch.setattr(config, "GROUPS_FILE", path)
        return groups.reload()

    yield use
    monkeypatch.undo()
    groups.reload()


# --- parsing -------------------------------------------------------------------------


def test_shipped_file_holds_sentiment_and_two_custom_groups():
    loaded = groups.load(SHIPPED)
    assert loaded == EXAMPLE
    assert loaded.sentiment == groups.builtin_sentiment()
    assert [g.name for g in loaded.custom[0].groups] == ["frustrated", "delighted"]
    assert config.GROUPS_FILE == SHIPPED and groups.active() == EXAMPLE and groups.active_problem() == ""


def test_toml_round_trip():
    assert groups.parse_toml(groups.to_toml(EXAMPLE)) == EXAMPLE
    data = tomllib.loads(groups.to_toml(EXAMPLE))
    assert data == groups.to_dict(EXAMPLE) and groups.from_dict(data) == EXAMPLE
    assert data["groupings"][1]["groups"][1] == {"name": "delighted", "emotions": ["happy"], "min_confidence": 0.7}
    # Defaults: not a partition, other = "other"; emotion names in any case.
    minimal = groups.parse_toml('[[groupings]]\nname = "g"\n[[groupings.groups]]\nname = "up"\nemotions = ["Happy"]')
    assert minimal == GroupSet((Grouping("g", (Group("up", ("happy",)),), False, "other"),))


def test_json_groups_files_are_refused_with_how_to_write_them_as_toml(active_file, tmp_path):
    path = tmp_path / "groups.JSON"
    path.write_text('{"groupings": [{"name": "g", "groups": [{"name": "up", "emotions": ["happy"]}]}]}')
    with pytest.raises(GroupError) as info:
        groups.load(path)
    (message,) = info.value.problems
    assert message.startswith(f"{path}: groups files are TOML; JSON groups files are no longer read or written.")
    assert str(tmp_path / "groups.toml") in message and "FER_GROUPS_FILE" in message
    assert "[[groupings]] table" in message and "[[groupings.groups]] table" in message
    # The TOML shape the message shows is a valid groups file.
    shown = groups.parse_toml(textwrap.dedent(message.split(", e.g.\n", 1)[1]))
    assert shown.get("custom").group("delighted") == Group("delighted", ("happy",), 0.7)
    # As FER_GROUPS_FILE: sentiment alone, and the same message (no traceback), missing file or not.
    for target in (path, tmp_path / "absent.json"):
        assert active_file(target) == groups.default_set()
        assert groups.active_problem().startswith(f"Emotion groups not loaded, using sentiment only: {target}: ")
        assert "groups files are TOML" in groups.active_problem()
    with pytest.raises(GroupError, match="groups files are TOML"):
        groups.save(EXAMPLE, tmp_path / "new.json")
    assert not (tmp_path / "new.json").exists()
    # JSON text in a .toml file: the TOML error says what it looks like.
    (message,) = problems(groups.parse_toml, path.read_text())
    assert message.startswith("not valid TOML: ") and "this looks like JSON; groups files are TOML" in message


def test_line_syntax_of_the_editor():
    text = """
    # my groups
    frustrated = angry + disgust + sad
    delighted = happy (confidence >= 0.7)
    sure_sad = sad (conf >= 85%)
    calm = neutral, surprise
    """
    parsed = groups.parse_lines(text)
    (custom,) = parsed.groupings
    assert custom.name == "custom" and not custom.partition and custom.other == "other"
    assert custom.groups == (
        Group("frustrated", ("angry", "disgust", "sad")),
        Group("delighted", ("happy",), 0.7),
        Group("sure_sad", ("sad",), 0.85),
        Group("calm", ("neutral", "surprise")),
    )
    assert groups.parse_lines(groups.to_lines(parsed)) == parsed
    assert groups.parse_lines(groups.to_lines(EXAMPLE)) == EXAMPLE
    assert groups.to_lines(EXAMPLE).splitlines()[0] == "[sentiment] partition, other = neutral"
    assert "delighted = happy (confidence >= 0.7)" in groups.to_lines(EXAMPLE)
    headed = groups.parse_lines('[mood] partition, other = ""\nup = happy\ndown = sad + angry', default_name="x")
    assert headed.groupings == (Grouping("mood", (Group("up", ("happy",)), Group("down", ("sad", "angry"))), True, ""),)
    assert groups.parse_lines("  \n# nothing yet\n") == GroupSet(())


def test_odd_names_round_trip_exactly():
    odd = [
        "a = b",
        "[x]",
        '"quoted"',
        " padded ",
        "#hash",
        "=SUM(A1)",
        "<b>bold</b> **md** [link](http://x)",
        "back\\slash",
        "👩‍💻 dev",
        "غاضب",
        "x" * groups.NAME_MAX,
        "plus + (confidence >= 0.1)",
    ]
    custom = Grouping("odd ]= grouping", tuple(Group(n, ("sad",)) for n in odd), other="other, too")
    group_set = GroupSet((custom,))
    for text, parse in (
        (groups.to_toml(group_set), groups.parse_toml),
        (groups.to_lines(group_set), groups.parse_lines),
    ):
        assert parse(text) == group_set, text
    listing = groups.describe(group_set)
    assert listing["group"].tolist() == odd and set(listing["grouping"]) == {"odd ]= grouping"}


# --- validation messages -------------------------------------------------------------


def test_unknown_emotion_suggests_the_closest_label():
    (message,) = problems(groups.parse_lines, "frustrated = angri + sad")
    assert message == 'line 1: unknown emotion "angri" in group "frustrated"; did you mean "angry"?'
    (message,) = problems(groups.parse_lines, "x = zzz")
    assert message.startswith('line 1: unknown emotion "zzz" in group "x" (known: angry, disgust, fear')
    # Validation is against the class names given: the model manifest's.
    (message,) = problems(groups.parse_lines, "up = happy\ndown = angry", ("happy", "sad", "calm"))
    assert message.startswith('line 2: unknown emotion "angry"')
    assert groups.validate(EXAMPLE) == EXAMPLE
    with pytest.raises(GroupError, match='unknown emotion "surprise"'):
        groups.validate(EXAMPLE, ("angry", "disgust", "fear", "happy", "sad", "neutral"))


def test_empty_group_duplicates_and_confidence_range():
    assert problems(groups.parse_lines, "nothing =") == ['line 1: group "nothing" has no emotions']
    assert problems(groups.parse_lines, "a = sad\nA = happy") == [
        'line 2: duplicate group name "A" in grouping "custom" (also line 1)'
    ]
    assert problems(groups.parse_lines, "[g]\nx = sad\n[G]\ny = sad") == [
        'line 3: duplicate grouping name "G" (also line 1)'
    ]
    assert problems(groups.parse_lines, "d = happy (confidence >= 1.5)") == [
        'line 1: group "d": the minimum confidence must be between 0 and 1, got 1.5'
    ]
    assert problems(groups.parse_lines, "d = happy (confidence >= 120%)")[0].endswith("got 1.2")
    toml = '[[groupings]]\nname = "g"\n[[groupings.groups]]\nname = "d"\nemotions = ["happy"]\nmin_confidence = nan\n'
    assert problems(groups.parse_toml, toml) == [
        'grouping 1, group 1: group "d": the minimum confidence must be between 0 and 1, got nan'
    ]
    assert "must be a number from 0 to 1, not true/false" in problems(groups.parse_toml, toml.replace("nan", "true"))[0]


def test_bad_syntax_carries_the_line_number():
    text = (
        "ok = sad\n\nfrustrated angry + sad\nx = happy (confidence > 0.5)\ny = sad + + angry\nz = happy (conf >= abc)"
    )
    assert problems(groups.parse_lines, text) == [
        "line 3: expected `name = emotion + emotion`, optionally followed by `(confidence >= 0.7)`",
        "line 4: expected a condition like `(confidence >= 0.7)` at the end",
        "line 5: an emotion is missing between `+` signs",
        'line 6: "abc" is not a number',
    ]
    assert problems(groups.parse_lines, '"open = sad') == ["line 1: a quoted name is not closed (or has a bad escape)"]
    assert problems(groups.parse_lines, "[g\nx = sad")[0].startswith("line 1: expected `[grouping name]`")
    assert problems(groups.parse_lines, "[g] partitoin\nx = sad") == [
        'line 1: unknown option "partitoin" (expected `partition` or `other = NAME`)'
    ]
    assert problems(groups.parse_lines, "[g]\n[h]\nx = sad") == ['line 1: grouping "g" has no groups']


def test_names_empty_too_long_or_with_control_characters():
    assert problems(groups.parse_lines, " = happy") == ["line 1: a group name is empty"]
    long = "x" * (groups.NAME_MAX + 1)
    (message,) = problems(groups.parse_lines, f"{long} = happy")
    assert message == f'line 1: the group name "{"x" * 24}…" is {groups.NAME_MAX + 1} characters long; the limit is 60'
    bell = '[[groupings]]\nname = "g"\n[[groupings.groups]]\nname = "ding\\u0007"\nemotions = ["sad"]'
    assert problems(groups.parse_toml, bell) == [
        'grouping 1, group 1: the group name "ding\\u0007" contains a control character (U+0007)'
    ]
    surrogate = {"groupings": [{"name": "g", "groups": [{"name": "\ud800", "emotions": ["sad"]}]}]}
    assert "not valid text (a lone surrogate U+D800)" in problems(groups.from_dict, surrogate)[0]
    assert problems(groups.parse_toml, '[[groupings]]\n[[groupings.groups]]\nname = "a"\nemotions = ["sad"]') == [
        "grouping 1: a grouping name is missing"
    ]


def test_partition_overlap_sentiment_rules_and_file_structure():
    assert problems(groups.parse_lines, "[p] partition\nup = happy\nglad = happy + surprise") == [
        'line 3: grouping "p" is a partition, but "happy" is in both "up" and "glad"'
    ]
    # Overlap is fine without partition.
    assert len(groups.parse_lines("[p]\nup = happy\nglad = happy + surprise").groupings[0].groups) == 2
    (message,) = problems(groups.parse_lines, "[sentiment] partition\npositive = happy\nnegative = sad")
    assert message.startswith("line 1: the sentiment grouping must be a partition into positive, neutral and negative")
    moved = "[sentiment] partition, other = neutral\npositive = happy + surprise\nneutral = neutral\nnegative = sad"
    assert groups.parse_lines(moved).sentiment.label_of_emotion("surprise") == "positive"
    one_group = '[[groupings]]\nname = "g"\n[[groupings.groups]]\nname = "a"\n'
    assert problems(groups.parse_toml, one_group + 'emotion = ["sad"]') == [
        'grouping 1, group 1: unknown key "emotion" (expected name, emotions, min_confidence)',
        'grouping 1, group 1: group "a" has no emotions',
    ]
    assert problems(groups.parse_toml, one_group + 'emotions = "sad"') == [
        'grouping 1, group 1: the emotions of group "a" must be a list of labels'
    ]
    assert problems(groups.parse_toml, "version = 2\ngroupings = []") == [
        "unsupported version 2 (this program reads version 1)"
    ]


def test_syntax_errors_of_toml_and_every_problem_at_once():
    (message,) = problems(groups.parse_toml, "[[groupings]\nname = 1")
    assert message.startswith("not valid TOML: ") and "line 1" in message and "JSON" not in message
    (message,) = problems(groups.parse_toml, "version = 1\nversion = 1")
    assert message == "not valid TOML: Cannot overwrite a value (at end of document)"  # a duplicate key
    many = problems(groups.parse_lines, "a = angri\nb =\n = sad\nd = sad (confidence >= 2)")
    assert [m.split(":")[0] for m in many] == ["line 1", "line 2", "line 3", "line 4"]
    assert "GroupError" not in str(GroupError(many)) and str(GroupError(many)).count("\n") == 3


# --- membership ----------------------------------------------------------------------


def test_membership_with_confidence_thresholds():
    delighted = Group("delighted", ("happy",), 0.7)
    assert delighted.matches("happy", 0.7) and delighted.matches("happy", 0.95)
    assert not delighted.matches("happy", 0.6999) and not delighted.matches("sad", 0.99)
    assert not delighted.matches("happy", float("nan")) and not delighted.matches("happy", None)
    df = frame([("happy", 0.9), ("happy", 0.7), ("happy", 0.5), ("sad", 0.8)], extra_rows=1)
    member = groups.memberships(df, EXAMPLE.get("custom"))
    assert list(member.columns) == ["frustrated", "delighted", "other"]
    assert member["delighted"].tolist() == [True, True, False, False, False]
    assert member["other"].tolist() == [False, False, True, False, False]  # a 50 % smile is in neither group
    counts = groups.counts(df, EXAMPLE.get("custom")).set_index("group")
    assert counts["faces"].tolist() == [1, 2, 1] and counts.loc["delighted", "share"] == pytest.approx(0.5)


def test_overlap_versus_partition():
    overlapping = groups.parse_lines("[o]\nunhappy = sad + angry\nloud = angry + surprise").groupings[0]
    df = frame([("angry", 0.9), ("sad", 0.9), ("happy", 0.9), ("angry", 0.9)])
    assert groups.counts(df, overlapping)["faces"].tolist() == [3, 2, 1]
    assert groups.counts(df, overlapping)["share"].sum() == pytest.approx(1.5)  # overlap: shares add up past 1
    assert groups.labels(df, overlapping).tolist() == ["unhappy", "unhappy", "other", "unhappy"]
    assert overlapping.buckets_of("angry", 0.9) == ("unhappy", "loud")

    partition = groups.parse_lines('[p] partition, other = ""\nunhappy = sad + angry\nup = happy').groupings[0]
    df = frame([("angry", 0.9), ("happy", 0.9), ("fear", 0.9)], extra_rows=1)
    assert groups.labels(df, partition).tolist() == ["unhappy", "up", "", ""]
    assert partition.buckets == ("unhappy", "up")  # nothing counts the fearful face
    counts = groups.counts(df, partition)
    assert counts["faces"].tolist() == [1, 1] and counts["share"].tolist() == pytest.approx([1 / 3, 1 / 3])
    # other naming a group: the faces in no group join it.
    joined = groups.parse_lines("[p] partition, other = up\nunhappy = sad + angry\nup = happy").groupings[0]
    assert groups.counts(df, joined)["faces"].tolist() == [1, 2]


def test_soft_scores_sum_member_probabilities():
    custom = EXAMPLE.get("custom")
    df = frame([("sad", 0.6), ("happy", 0.5)], extra_rows=1)
    scores = groups.soft_scores(df, custom)
    rest = 0.4 / 6
    assert scores.loc[0, "frustrated"] == pytest.approx(0.6 + 2 * rest)
    assert scores.loc[1, "delighted"] == pytest.approx(0.5)  # thresholds do not apply to soft scores
    assert math.isnan(scores.loc[2, "frustrated"])
    means = groups.mean_soft_scores(df, custom).set_index("group")["score"]
    assert means["delighted"] == pytest.approx((rest + 0.5) / 2)
    assert groups.mean_soft_scores(frame([], extra_rows=1), custom)["score"].isna().all()
    # Any table with probability columns: e.g. a video timeline's mean probabilities.
    timeline = pd.DataFrame({"time_s": [0, 1], "sad": [0.2, 0.5], "angry": [0.1, np.nan], "disgust": [0.0, 0.0]})
    assert groups.soft_scores(timeline, custom)["frustrated"].tolist() == pytest.approx([0.3, 0.5])


# --- sentiment is the default grouping -----------------------------------------------


def test_sentiment_as_grouping_gives_the_old_numbers():
    rng = np.random.default_rng(0)
    labels = [*CLASSES, "contempt"]  # an unknown label counted neutral, as before
    faces = [(labels[i], float(c)) for i, c in zip(rng.integers(0, len(labels), 200), rng.uniform(0.2, 1, 200))]
    df = frame(faces, extra_rows=3)
    old = pd.Series([config.SENTIMENT.get(e, "neutral") for e, _ in faces]).value_counts()
    new = groups.counts(df, groups.builtin_sentiment()).set_index("group")["faces"]
    assert new.to_dict() == {s: int(old.get(s, 0)) for s in ("positive", "neutral", "negative")}
    via_analytics = aggregates.sentiment_counts(df).set_index("sentiment")["faces"]
    assert via_analytics.to_dict() == new.to_dict()
    expected_net = round(100.0 * (old.get("positive", 0) - old.get("negative", 0)) / len(faces), 1)
    assert aggregates.net_sentiment(df) == pytest.approx(expected_net)
    assert groups.labels(df, groups.builtin_sentiment()).tolist()[:5] == [
        config.SENTIMENT.get(e, "neutral") for e, _ in faces[:5]
    ]
    from src.analytics.groups import sentiment_of

    assert [sentiment_of(e) for e in labels] == [config.SENTIMENT.get(e, "neutral") for e in labels]


def test_the_active_file_sets_the_sentiment(active_file, tmp_path):
    path = tmp_path / "groups.toml"
    moved = groups.parse_lines(
        "[sentiment] partition, other = neutral\npositive = happy + surprise\nneutral = neutral\n"
        "negative = angry + disgust + fear + sad\n[team]\nstressed = fear + sad"
    )
    groups.save(moved, path)
    assert active_file(path) == moved
    from src.analytics.groups import sentiment_of

    assert sentiment_of("surprise") == "positive"
    df = frame([("surprise", 0.9), ("sad", 0.9)])
    assert aggregates.sentiment_counts(df)["faces"].tolist() == [1, 0, 1]
    assert [g.name for g in groups.active().custom] == ["team"]


# --- files and the active set --------------------------------------------------------


def test_missing_or_invalid_file_falls_back_to_sentiment_with_a_message(active_file, tmp_path):
    missing = tmp_path / "nope.toml"
    assert active_file(missing) == groups.default_set()
    assert groups.active_problem() == f"Emotion groups not loaded, using sentiment only: {missing}: no such file"
    broken = tmp_path / "broken.toml"
    broken.write_text('[[groupings]]\nname = "g"\n[[groupings.groups]]\nname = "x"\nemotions = ["angri"]\n')
    assert active_file(broken) == groups.default_set()
    assert groups.active_problem().endswith(
        'grouping 1, group 1: unknown emotion "angri" in group "x"; did you mean "angry"?'
    )
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert active_file(binary) == groups.default_set() and "cannot be read" in groups.active_problem()
    # The app's numbers still work on the fallback.
    assert aggregates.campaign_table({"a": frame([("sad", 0.9)])}, CLASSES).columns[-1] == "net sentiment"


def test_save_validates_writes_atomically_and_updates_the_active_set(active_file, tmp_path):
    path = tmp_path / "sub" / "groups.toml"
    assert groups.save(EXAMPLE, path) == path
    assert groups.load(path) == EXAMPLE and tomllib.loads(path.read_text())["version"] == 1
    bad = GroupSet((Grouping("g", (Group("x", ("angri",)),)),))
    with pytest.raises(GroupError, match="did you mean"):
        groups.save(bad, path)
    assert groups.load(path) == EXAMPLE  # untouched
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(GroupError, match="cannot be written"):
        groups.save(EXAMPLE, blocker / "groups.toml")
    # Saving the active file is seen at once (the dashboard editor's save).
    active = tmp_path / "active.toml"
    groups.save(EXAMPLE, active)
    active_file(active)
    edited = EXAMPLE.replace(groups.parse_lines("[custom]\ntense = fear + angry").groupings[0])
    groups.save(edited, active)
    assert groups.active() == edited and [g.name for g in groups.active().custom[0].groups] == ["tense"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["active.toml", "file", "sub"]  # no temporary files left


def test_find_group_for_the_alert():
    grouping, group = EXAMPLE.find_group("negative")
    assert grouping.name == "sentiment" and group.emotions == ("angry", "disgust", "fear", "sad")
    assert EXAMPLE.find_group("custom:Frustrated")[1].name == "frustrated"
    assert EXAMPLE.find_group("DELIGHTED")[1].min_confidence == 0.7
    assert GroupSet(()).find_group("negative")[0] == groups.builtin_sentiment()
    with pytest.raises(GroupError, match=r'no group named "grumpy" \(groups: sentiment:positive, '):
        EXAMPLE.find_group("grumpy")
