"""Checking definitions: raw groupings as a parser read them in, a ``GroupSet`` or every problem out.

Both syntaxes (``toml_file``, ``lines``) parse into ``RawGrouping``/``RawGroup``, which keep
the values exactly as written and where they were (``line 3``, ``grouping 2, group 1``);
``build`` checks them all and raises one ``GroupError`` listing every problem, e.g.
``line 3: unknown emotion "angri" in group "frustrated"; did you mean "angry"?``. Emotion names
are labels: matched without regard to case against the class names given (the model
manifest's), with the closest label suggested for a typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from src import config
from src.analytics.groups.model import (
    DEFAULT_OTHER,
    SENTIMENT,
    SENTIMENT_BUCKETS,
    Group,
    GroupError,
    Grouping,
    GroupSet,
)
from src.analytics.groups.names import key, name_problem, quoted, type_name

MAX_GROUPS = 50  # per grouping
MAX_GROUPINGS = 20  # per file
MAX_TEXT = 256_000  # characters of a groups file or editor text


@dataclass
class RawGroup:
    """A group as written: any value may be of the wrong type until ``build`` checks it."""

    name: object
    emotions: object
    min_confidence: object
    where: str


@dataclass
class RawGrouping:
    """A grouping as written, with its raw groups."""

    name: object
    partition: object
    other: object
    groups: list[RawGroup]
    where: str


def check_size(text: str) -> None:
    """Refuse definitions too long to be typed by hand before parsing them."""
    if len(text) > MAX_TEXT:
        raise GroupError(f"the definitions are {len(text):,} characters long; the limit is {MAX_TEXT:,}")


def _emotion(emotion: object, group_name: str, labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the label, None) or (None, why not)."""
    if not isinstance(emotion, str):
        return None, f"an emotion of group {quoted(group_name)} is {type_name(emotion)}, not a label"
    label = labels.get(emotion.strip().casefold())
    if label is not None:
        return label, None
    close = difflib.get_close_matches(emotion.strip().casefold(), list(labels), n=1, cutoff=0.5)
    hint = f"; did you mean {quoted(labels[close[0]])}?" if close else f" (known: {', '.join(labels.values())})"
    return None, f"unknown emotion {quoted(emotion)} in group {quoted(group_name)}{hint}"


def _confidence(value: object) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"the minimum confidence must be a number from 0 to 1, not {type_name(value)}"
    value = float(value)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        return None, f"the minimum confidence must be between 0 and 1, got {value:g}"
    return value, None


def build(raw: Sequence[RawGrouping], class_names: Sequence[str]) -> GroupSet:
    """Check every raw grouping and group; all problems at once in one ``GroupError``."""
    problems: list[str] = []
    labels = {c.casefold(): c for c in class_names}
    if len(raw) > MAX_GROUPINGS:
        problems.append(f"{len(raw)} groupings; the limit is {MAX_GROUPINGS}")
    groupings: list[Grouping] = []
    seen_groupings: dict[str, str] = {}
    for rg in raw:
        at = f"{rg.where}: " if rg.where else ""
        gname = rg.name
        problem = name_problem(gname, "grouping")
        if problem:
            problems.append(at + problem)
            gname = str(gname)
        elif key(gname) in seen_groupings:
            problems.append(f"{at}duplicate grouping name {quoted(gname)} (also {seen_groupings[key(gname)]})")
        else:
            seen_groupings[key(gname)] = rg.where or quoted(gname)
        partition = rg.partition
        if not isinstance(partition, bool):
            problems.append(f"{at}partition of grouping {quoted(gname)} must be true or false")
            partition = False
        if not rg.groups:
            problems.append(f"{at}grouping {quoted(gname)} has no groups")
        if len(rg.groups) > MAX_GROUPS:
            problems.append(f"{at}grouping {quoted(gname)} has {len(rg.groups)} groups; the limit is {MAX_GROUPS}")
        groups = _build_groups(rg, gname, partition, labels, problems)
        other = rg.other
        if not isinstance(other, str):
            problems.append(f"{at}other of grouping {quoted(gname)} must be text")
            other = DEFAULT_OTHER
        elif other:
            problem = name_problem(other, "other")
            if problem:
                problems.append(f"{at}grouping {quoted(gname)}: {problem}")
            for g in groups:  # "Neutral" means the group neutral
                if key(g.name) == key(other):
                    other = g.name
        grouping = Grouping(gname, tuple(groups), partition, other)
        if isinstance(rg.name, str) and key(rg.name) == SENTIMENT and groups:
            problems.extend(at + p for p in _sentiment_problems(grouping))
        groupings.append(grouping)
    if problems:
        raise GroupError(problems)
    return GroupSet(tuple(groupings))


def _build_groups(
    rg: RawGrouping, gname: str, partition: bool, labels: Mapping[str, str], problems: list[str]
) -> list[Group]:
    """The checked groups of one grouping; their problems go to ``problems``."""
    at = f"{rg.where}: " if rg.where else ""
    groups: list[Group] = []
    seen: dict[str, str] = {}
    owner: dict[str, str] = {}  # emotion -> group, for partitions
    for rgroup in rg.groups:
        at_g = f"{rgroup.where}: " if rgroup.where else at
        name = rgroup.name
        problem = name_problem(name)
        if problem:
            problems.append(at_g + problem)
            continue
        if key(name) in seen:
            problems.append(
                f"{at_g}duplicate group name {quoted(name)} in grouping {quoted(gname)} (also {seen[key(name)]})"
            )
        seen.setdefault(key(name), rgroup.where or quoted(name))
        emotions: list[str] = []
        if not isinstance(rgroup.emotions, (list, tuple)):
            problems.append(f"{at_g}the emotions of group {quoted(name)} must be a list of labels")
            continue
        for emotion in rgroup.emotions:
            label, problem = _emotion(emotion, name, labels)
            if problem:
                problems.append(at_g + problem)
            elif label not in emotions:
                emotions.append(label)
        if not rgroup.emotions:
            problems.append(f"{at_g}group {quoted(name)} has no emotions")
        confidence, problem = _confidence(rgroup.min_confidence)
        if problem:
            problems.append(f"{at_g}group {quoted(name)}: {problem}")
        if partition:
            for emotion in emotions:
                if emotion in owner and owner[emotion] != name:
                    problems.append(
                        f"{at_g}grouping {quoted(gname)} is a partition, but {quoted(emotion)} is in both "
                        f"{quoted(owner[emotion])} and {quoted(name)}"
                    )
                owner.setdefault(emotion, name)
        groups.append(Group(name, tuple(emotions), confidence))
    return groups


def _sentiment_problems(grouping: Grouping) -> list[str]:
    rule = (
        "the sentiment grouping must be a partition into positive, neutral and negative, without "
        "confidence thresholds, with other = one of the three (give a custom grouping another name)"
    )
    ok = (
        grouping.name == SENTIMENT
        and grouping.partition
        and sorted(grouping.group_names) == sorted(SENTIMENT_BUCKETS)
        and all(g.min_confidence is None for g in grouping.groups)
        and grouping.other in SENTIMENT_BUCKETS
    )
    return [] if ok else [rule]


def validate(group_set: GroupSet, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    """``group_set`` checked (e.g. against another model's labels); raises ``GroupError``."""
    raw = [
        RawGrouping(
            g.name,
            g.partition,
            g.other,
            [RawGroup(x.name, list(x.emotions), x.min_confidence, "") for x in g.groups],
            f"grouping {quoted(g.name)}" if isinstance(g.name, str) else "",
        )
        for g in group_set.groupings
    ]
    return build(raw, class_names)
