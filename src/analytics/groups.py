"""Emotion groups: user-defined categories over the model's labels; sentiment is one of them.

Definitions
-----------
* ``Group(name, emotions, min_confidence=None)``: e.g. *frustrated* = angry + disgust + sad,
  or *delighted* = happy with confidence >= 0.7.
* ``Grouping(name, groups, partition=False, other="other")``: an ordered list of groups
  read together (e.g. *sentiment* = positive / neutral / negative).
* ``GroupSet(groupings)``: what a groups file holds (``FER_GROUPS_FILE``, by default
  ``inputs/emotion_groups.toml``: the sentiment grouping and two example custom groups).

Semantics
---------
* A face belongs to a group when its top emotion is one of the group's emotions and, if
  the group sets ``min_confidence``, the face's confidence (its top probability) is at
  least that. Only rows with ``status == "ok"`` are faces.
* Groups of one grouping may overlap (a face counts in each group it matches) unless the
  grouping is a ``partition``: then no emotion may be in two of its groups, so a face is
  in at most one.
* A face in none of a grouping's groups counts as ``other``: if ``other`` names one of the
  grouping's groups it joins that group (sentiment: unknown labels are *neutral*);
  otherwise ``other`` is an extra bucket listed after the groups; ``""`` counts it nowhere.
* Shares are of all faces, so the shares of overlapping groups can add up to more than 1.
* Soft score of a group for one face = the sum of its members' probabilities, whatever
  the face's top emotion or confidence (``min_confidence`` does not apply). Its mean over
  faces (or over a video's seconds) moves smoothly, which suits trends.
* The grouping named ``sentiment`` is the one the app's sentiment uses
  (``groups.sentiment_of``, ``analytics.sentiment_counts``, ``net_sentiment``, the box
  colours): it must be a partition into exactly *positive*, *neutral* and *negative*,
  without confidence thresholds, whose ``other`` is one of the three. When the groups file
  has none, the built-in one (``config.SENTIMENT``) is used.

Group and grouping names are user data: kept exactly as written (any Unicode, no control
characters, at most ``NAME_MAX`` characters), never read as markup; pages show them as
plain text and CSV cells go through ``src.common.sanitize``. Emotion names are labels: matched
without regard to case, and checked against the class names given (the model manifest's),
with the closest label suggested for a typo.

Formats
-------
TOML and JSON share one schema::

    version = 1
    [[groupings]]
    name = "custom"          # partition = false and other = "other" by default
    [[groupings.groups]]
    name = "delighted"
    emotions = ["happy"]
    min_confidence = 0.7     # optional

The dashboard editor's line syntax (``parse_lines`` / ``to_lines``)::

    # a comment
    [sentiment] partition, other = neutral
    positive = happy
    negative = angry + disgust + fear + sad
    [custom]
    frustrated = angry + disgust + sad
    delighted = happy (confidence >= 0.7)

Lines before any ``[header]`` belong to a grouping named ``default_name``. A name holding
``=``, ``]`` or surrounding spaces is written as a JSON string (``"a = b" = happy``).

Every problem raises ``GroupError``, whose ``problems`` list says where (``line 3`` or
``grouping 2, group 1``) and what, e.g. ``line 3: unknown emotion "angri" in group
"frustrated"; did you mean "angry"?``. ``active()`` never raises: a missing or invalid
``FER_GROUPS_FILE`` is logged, reported by ``active_problem()``, and the built-in sentiment
grouping is used alone.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import math
import os
import re
import tempfile
import threading
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from src import config

LOGGER = logging.getLogger(__name__)

NAME_MAX = 60  # characters in a group or grouping name
MAX_GROUPS = 50  # per grouping
MAX_GROUPINGS = 20  # per file
MAX_TEXT = 256_000  # characters of a groups file or editor text
SENTIMENT = "sentiment"
SENTIMENT_BUCKETS: tuple[str, ...] = ("positive", "neutral", "negative")
DEFAULT_OTHER = "other"
FILE_VERSION = 1


class GroupError(ValueError):
    """Invalid group definitions; ``problems`` lists every one found, each on its own line of ``str()``."""

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# ---------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """A named set of emotions, optionally only for faces at least ``min_confidence`` sure."""

    name: str
    emotions: tuple[str, ...]
    min_confidence: float | None = None

    def matches(self, emotion: str, confidence: float | None = None) -> bool:
        """Whether a face with this top emotion and confidence belongs to the group."""
        if emotion not in self.emotions:
            return False
        if self.min_confidence is None:
            return True
        return confidence is not None and not math.isnan(confidence) and confidence >= self.min_confidence

    def describe(self) -> str:
        """The group in the editor's line syntax (``delighted = happy (confidence >= 0.7)``)."""
        text = f"{_line_name(self.name)} = {' + '.join(self.emotions)}"
        if self.min_confidence is not None:
            text += f" (confidence >= {self.min_confidence!r})"
        return text


@dataclass(frozen=True)
class Grouping:
    """Ordered groups read together; see the module docstring for partition and other."""

    name: str
    groups: tuple[Group, ...]
    partition: bool = False
    other: str = DEFAULT_OTHER

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def buckets(self) -> tuple[str, ...]:
        """What faces are counted under: the groups, then ``other`` when it is a bucket of its own."""
        if self.other and self.other not in self.group_names:
            return (*self.group_names, self.other)
        return self.group_names

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def buckets_of(self, emotion: str, confidence: float | None = None) -> tuple[str, ...]:
        """The buckets one face counts in: its groups, else ``(other,)``, else nothing."""
        hits = tuple(g.name for g in self.groups if g.matches(emotion, confidence))
        if hits:
            return hits
        return (self.other,) if self.other else ()

    def label_of(self, emotion: str, confidence: float | None = None) -> str:
        """The face's first bucket (a partition's only one), or ``""``."""
        buckets = self.buckets_of(emotion, confidence)
        return buckets[0] if buckets else ""

    @functools.cached_property
    def _by_emotion(self) -> dict[str, str]:
        return {e: g.name for g in reversed(self.groups) for e in g.emotions}

    def label_of_emotion(self, emotion: str) -> str:
        """``label_of`` for groupings without thresholds, by a dict lookup (per-face hot paths)."""
        return self._by_emotion.get(emotion, self.other)


@dataclass(frozen=True)
class GroupSet:
    """The groupings of one groups file, in order."""

    groupings: tuple[Grouping, ...] = field(default_factory=tuple)

    def __iter__(self):
        return iter(self.groupings)

    def __len__(self) -> int:
        return len(self.groupings)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groupings)

    def get(self, name: str) -> Grouping | None:
        for grouping in self.groupings:
            if grouping.name == name:
                return grouping
        return None

    @property
    def sentiment(self) -> Grouping:
        """The set's sentiment grouping, or the built-in one."""
        return self.get(SENTIMENT) or builtin_sentiment()

    @property
    def custom(self) -> tuple[Grouping, ...]:
        """Every grouping but sentiment (which has its own columns and charts)."""
        return tuple(g for g in self.groupings if g.name != SENTIMENT)

    def with_sentiment(self) -> GroupSet:
        """The set with the built-in sentiment grouping first when it has none."""
        return self if self.get(SENTIMENT) else GroupSet((builtin_sentiment(), *self.groupings))

    def replace(self, grouping: Grouping) -> GroupSet:
        """The set with ``grouping`` in place of the one of that name (or added at the end)."""
        items = list(self.groupings)
        for i, g in enumerate(items):
            if g.name == grouping.name:
                items[i] = grouping
                return GroupSet(tuple(items))
        return GroupSet((*items, grouping))

    def find_group(self, spec: str) -> tuple[Grouping, Group]:
        """The group ``spec`` names: a group name (first grouping holding it) or ``grouping:group``.

        The sentiment grouping is searched first, so ``negative`` is sentiment's negative.
        """
        ordered = sorted(self.with_sentiment().groupings, key=lambda g: g.name != SENTIMENT)
        for exact in (True, False):
            for grouping in ordered:
                for group in grouping.groups:
                    if group.name == spec if exact else _key(group.name) == _key(spec):
                        return grouping, group
        grouping_name, sep, group_name = spec.partition(":")
        if sep:
            for grouping in ordered:
                if _key(grouping.name) == _key(grouping_name):
                    for group in grouping.groups:
                        if _key(group.name) == _key(group_name):
                            return grouping, group
        known = ", ".join(f"{g.name}:{x.name}" for g in ordered for x in g.groups)
        raise GroupError(f"no group named {_q(spec)} (groups: {known})")


@functools.cache
def builtin_sentiment() -> Grouping:
    """Sentiment from ``config.SENTIMENT``: a partition into positive, neutral and negative."""
    groups = tuple(
        Group(bucket, tuple(e for e, s in config.SENTIMENT.items() if s == bucket)) for bucket in SENTIMENT_BUCKETS
    )
    return Grouping(SENTIMENT, groups, partition=True, other="neutral")


def default_set() -> GroupSet:
    """The fallback: the built-in sentiment grouping alone."""
    return GroupSet((builtin_sentiment(),))


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _key(name: str) -> str:
    """Names that differ only in case or surrounding spaces are duplicates."""
    return name.strip().casefold()


def _q(text: str) -> str:
    """A name quoted for a message: escapes show control characters and quotes as typed."""
    return json.dumps(text, ensure_ascii=False)


def name_problem(name: object, what: str = "group") -> str | None:
    """Why ``name`` cannot be a group (or grouping) name, or None."""
    if name is None:
        return f"a {what} name is missing"
    if not isinstance(name, str):
        return f"the {what} name must be text, not {_type_name(name)}"
    if not name.strip():
        return f"a {what} name is empty"
    if len(name) > NAME_MAX:
        return f"the {what} name {_q(name[:24] + '…')} is {len(name)} characters long; the limit is {NAME_MAX}"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"the {what} name {_q(name)} contains a control character (U+{ord(ch):04X})"
        if category == "Cs":
            return f"the {what} name {_q(name)} is not valid text (a lone surrogate U+{ord(ch):04X})"
    return None


def _type_name(value: object) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


@dataclass
class _RawGroup:
    name: object
    emotions: object
    min_confidence: object
    where: str


@dataclass
class _RawGrouping:
    name: object
    partition: object
    other: object
    groups: list[_RawGroup]
    where: str


def _emotion_problem(emotion: object, group_name: str, labels: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the label, None) or (None, why not)."""
    if not isinstance(emotion, str):
        return None, f"an emotion of group {_q(group_name)} is {_type_name(emotion)}, not a label"
    label = labels.get(emotion.strip().casefold())
    if label is not None:
        return label, None
    close = difflib.get_close_matches(emotion.strip().casefold(), list(labels), n=1, cutoff=0.5)
    hint = f"; did you mean {_q(labels[close[0]])}?" if close else f" (known: {', '.join(labels.values())})"
    return None, f"unknown emotion {_q(emotion)} in group {_q(group_name)}{hint}"


def _confidence(value: object) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"the minimum confidence must be a number from 0 to 1, not {_type_name(value)}"
    value = float(value)
    if not 0.0 <= value <= 1.0:  # NaN fails too
        return None, f"the minimum confidence must be between 0 and 1, got {value:g}"
    return value, None


def _build(raw: Sequence[_RawGrouping], class_names: Sequence[str]) -> GroupSet:
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
        elif _key(gname) in seen_groupings:
            problems.append(f"{at}duplicate grouping name {_q(gname)} (also {seen_groupings[_key(gname)]})")
        else:
            seen_groupings[_key(gname)] = rg.where or _q(gname)
        partition = rg.partition
        if not isinstance(partition, bool):
            problems.append(f"{at}partition of grouping {_q(gname)} must be true or false")
            partition = False
        if not rg.groups:
            problems.append(f"{at}grouping {_q(gname)} has no groups")
        if len(rg.groups) > MAX_GROUPS:
            problems.append(f"{at}grouping {_q(gname)} has {len(rg.groups)} groups; the limit is {MAX_GROUPS}")
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
            if _key(name) in seen:
                problems.append(
                    f"{at_g}duplicate group name {_q(name)} in grouping {_q(gname)} (also {seen[_key(name)]})"
                )
            seen.setdefault(_key(name), rgroup.where or _q(name))
            emotions: list[str] = []
            if not isinstance(rgroup.emotions, (list, tuple)):
                problems.append(f"{at_g}the emotions of group {_q(name)} must be a list of labels")
                continue
            for emotion in rgroup.emotions:
                label, problem = _emotion_problem(emotion, name, labels)
                if problem:
                    problems.append(at_g + problem)
                elif label not in emotions:
                    emotions.append(label)
            if not rgroup.emotions:
                problems.append(f"{at_g}group {_q(name)} has no emotions")
            confidence, problem = _confidence(rgroup.min_confidence)
            if problem:
                problems.append(f"{at_g}group {_q(name)}: {problem}")
            if partition:
                for emotion in emotions:
                    if emotion in owner and owner[emotion] != name:
                        problems.append(
                            f"{at_g}grouping {_q(gname)} is a partition, but {_q(emotion)} is in both "
                            f"{_q(owner[emotion])} and {_q(name)}"
                        )
                    owner.setdefault(emotion, name)
            groups.append(Group(name, tuple(emotions), confidence))
        other = rg.other
        if not isinstance(other, str):
            problems.append(f"{at}other of grouping {_q(gname)} must be text")
            other = DEFAULT_OTHER
        elif other:
            problem = name_problem(other, "other")
            if problem:
                problems.append(f"{at}grouping {_q(gname)}: {problem}")
            for g in groups:  # "Neutral" means the group neutral
                if _key(g.name) == _key(other):
                    other = g.name
        grouping = Grouping(gname, tuple(groups), partition, other)
        if isinstance(rg.name, str) and _key(rg.name) == SENTIMENT and groups:
            problems.extend(at + p for p in _sentiment_problems(grouping))
        groupings.append(grouping)
    if problems:
        raise GroupError(problems)
    return GroupSet(tuple(groupings))


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
    return _build(_raw_from_set(group_set), class_names)


def _raw_from_set(group_set: GroupSet) -> list[_RawGrouping]:
    return [
        _RawGrouping(
            g.name,
            g.partition,
            g.other,
            [_RawGroup(x.name, list(x.emotions), x.min_confidence, "") for x in g.groups],
            f"grouping {_q(g.name)}" if isinstance(g.name, str) else "",
        )
        for g in group_set.groupings
    ]


# ---------------------------------------------------------------------------
# TOML and JSON
# ---------------------------------------------------------------------------

_TOP_KEYS = {"version", "groupings"}
_GROUPING_KEYS = {"name", "partition", "other", "groups"}
_GROUP_KEYS = {"name", "emotions", "min_confidence"}


def from_dict(data: object, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    """A ``GroupSet`` from the parsed TOML/JSON schema (see the module docstring)."""
    if not isinstance(data, dict):
        raise GroupError("the groups file must hold a table with a list of groupings")
    problems: list[str] = []
    extra = sorted(set(data) - _TOP_KEYS)
    if extra:
        problems.append(f"unknown key {_q(extra[0])} at the top (expected version and groupings)")
    version = data.get("version", FILE_VERSION)
    if version != FILE_VERSION:
        problems.append(f"unsupported version {version!r} (this program reads version {FILE_VERSION})")
    groupings = data.get("groupings", [])
    if not isinstance(groupings, list):
        raise GroupError([*problems, "groupings must be a list"])
    raw: list[_RawGrouping] = []
    for i, item in enumerate(groupings, 1):
        where = f"grouping {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a table with name and groups")
            continue
        for key in sorted(set(item) - _GROUPING_KEYS):
            problems.append(f"{where}: unknown key {_q(key)} (expected name, partition, other, groups)")
        groups = item.get("groups", [])
        if not isinstance(groups, list):
            problems.append(f"{where}: groups must be a list")
            groups = []
        raw_groups = []
        for j, g in enumerate(groups, 1):
            at = f"{where}, group {j}"
            if not isinstance(g, dict):
                problems.append(f"{at}: must be a table with name and emotions")
                continue
            for key in sorted(set(g) - _GROUP_KEYS):
                problems.append(f"{at}: unknown key {_q(key)} (expected name, emotions, min_confidence)")
            raw_groups.append(_RawGroup(g.get("name"), g.get("emotions", []), g.get("min_confidence"), at))
        raw.append(
            _RawGrouping(
                item.get("name"), item.get("partition", False), item.get("other", DEFAULT_OTHER), raw_groups, where
            )
        )
    try:
        result = _build(raw, class_names)
    except GroupError as exc:
        problems.extend(exc.problems)
    if problems:
        raise GroupError(problems)
    return result


def to_dict(group_set: GroupSet) -> dict:
    """The TOML/JSON schema of ``group_set``."""
    return {
        "version": FILE_VERSION,
        "groupings": [
            {
                "name": g.name,
                "partition": g.partition,
                "other": g.other,
                "groups": [
                    {"name": x.name, "emotions": list(x.emotions)}
                    | ({} if x.min_confidence is None else {"min_confidence": x.min_confidence})
                    for x in g.groups
                ],
            }
            for g in group_set.groupings
        ],
    }


def _check_size(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise GroupError(f"the definitions are {len(text):,} characters long; the limit is {MAX_TEXT:,}")


def parse_toml(text: str, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    _check_size(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GroupError(f"not valid TOML: {exc}") from None
    return from_dict(data, class_names)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise GroupError(f"not valid JSON: the key {_q(key)} appears twice in one object")
        out[key] = value
    return out


def parse_json(text: str, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    _check_size(text)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise GroupError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    return from_dict(data, class_names)


def to_json(group_set: GroupSet) -> str:
    return json.dumps(to_dict(group_set), indent=2, ensure_ascii=False) + "\n"


def _toml_str(text: str) -> str:
    # A JSON string is a valid TOML basic string: control characters never get here
    # (names refuse them) and JSON's escapes are TOML's.
    return json.dumps(text, ensure_ascii=False)


def to_toml(group_set: GroupSet) -> str:
    lines = [
        "# Emotion groups (src/analytics/groups.py): a face is in a group when its top emotion is a member",
        "# and its confidence is at least min_confidence (if set). Edit here or in the dashboard.",
        f"version = {FILE_VERSION}",
    ]
    for grouping in group_set.groupings:
        lines += ["", "[[groupings]]", f"name = {_toml_str(grouping.name)}"]
        lines += [f"partition = {'true' if grouping.partition else 'false'}", f"other = {_toml_str(grouping.other)}"]
        for group in grouping.groups:
            lines += ["", "[[groupings.groups]]", f"name = {_toml_str(group.name)}"]
            lines.append(f"emotions = [{', '.join(_toml_str(e) for e in group.emotions)}]")
            if group.min_confidence is not None:
                lines.append(f"min_confidence = {group.min_confidence!r}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The dashboard editor's line syntax
# ---------------------------------------------------------------------------

_CONDITION = re.compile(
    r"\(\s*(?:min(?:imum)?[ _]?)?conf(?:idence)?\s*(?:>=|≥)\s*(?P<value>[^)\s%]+)\s*(?P<pct>%?)\s*\)\s*$", re.I
)
_SYNTAX = "expected `name = emotion + emotion`, optionally followed by `(confidence >= 0.7)`"


def _needs_quotes(name: str, specials: str) -> bool:
    return not name or name != name.strip() or name[0] in '"[#' or any(c in name for c in specials)


def _line_name(name: str, specials: str = "=") -> str:
    return _toml_str(name) if _needs_quotes(name, specials) else name


def _take_name(text: str, lineno: int, stop: str) -> tuple[str, str]:
    """A leading name (bare up to ``stop``, or a JSON string) and the rest of the line."""
    text = text.lstrip()
    if text.startswith('"'):
        try:
            name, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError:
            raise GroupError(f"line {lineno}: a quoted name is not closed (or has a bad escape)") from None
        return name, text[end:]
    head, sep, rest = text.partition(stop)
    if not sep:
        return head, ""
    return head.strip(), sep + rest


def parse_lines(text: str, class_names: Sequence[str] = config.EMOTIONS, default_name: str = "custom") -> GroupSet:
    """Groupings from the editor's line syntax (module docstring); every problem with its line number."""
    _check_size(text)
    problems: list[str] = []
    raw: list[_RawGrouping] = []
    current: _RawGrouping | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            if stripped.startswith("["):
                current = _header(stripped, lineno)
                raw.append(current)
                continue
            if current is None:
                current = _RawGrouping(default_name, False, DEFAULT_OTHER, [], "")
                raw.append(current)
            current.groups.append(_group_line(stripped, lineno))
        except GroupError as exc:
            problems.extend(exc.problems)
    if problems:
        raise GroupError(problems)
    return _build(raw, class_names)


def _header(line: str, lineno: int) -> _RawGrouping:
    body = line[1:]
    if body.lstrip().startswith('"'):
        name, rest = _take_name(body, lineno, "]")
        rest = rest.lstrip()
        if not rest.startswith("]"):
            raise GroupError(f"line {lineno}: expected `]` after the grouping name")
    else:
        name, sep, rest = body.partition("]")
        if not sep:
            raise GroupError(
                f"line {lineno}: expected `[grouping name]`, optionally followed by `partition, other = NAME`"
            )
        name, rest = name.strip(), "]" + rest
    partition, other = False, DEFAULT_OTHER
    rest = rest[1:]
    while rest.strip(" \t,"):
        rest = rest.lstrip(" \t,")
        word = re.match(r"[A-Za-z_]+", rest)
        keyword = word.group().casefold() if word else ""
        if keyword == "partition":
            partition, rest = True, rest[word.end() :]
            continue
        value = rest[word.end() :].lstrip() if keyword == "other" else ""
        if not value.startswith("="):
            option = rest.split(",")[0].strip()
            raise GroupError(f"line {lineno}: unknown option {_q(option)} (expected `partition` or `other = NAME`)")
        value = value[1:].lstrip()
        if value.startswith('"'):
            other, rest = _take_name(value, lineno, ",")
        else:
            other, _, rest = value.partition(",")
            other = other.strip()
    return _RawGrouping(name, partition, other, [], f"line {lineno}")


def _group_line(line: str, lineno: int) -> _RawGroup:
    name, rest = _take_name(line, lineno, "=")
    rest = rest.lstrip()
    if not rest.startswith("="):
        raise GroupError(f"line {lineno}: {_SYNTAX}")
    rhs = rest[1:].strip()
    confidence: object = None
    if "(" in rhs or ")" in rhs:
        match = _CONDITION.search(rhs)
        if not match:
            raise GroupError(f"line {lineno}: expected a condition like `(confidence >= 0.7)` at the end")
        try:
            confidence = float(match["value"]) / (100.0 if match["pct"] else 1.0)
        except ValueError:
            raise GroupError(f"line {lineno}: {_q(match['value'])} is not a number") from None
        rhs = rhs[: match.start()].strip()
    emotions = [e.strip() for e in re.split(r"[+,]", rhs)] if rhs else []
    if any(not e for e in emotions):
        raise GroupError(f"line {lineno}: an emotion is missing between `+` signs")
    return _RawGroup(name, emotions, confidence, f"line {lineno}")


def to_lines(group_set: GroupSet | Grouping) -> str:
    """``group_set`` (or one grouping) in the editor's line syntax; ``parse_lines`` reads it back."""
    groupings = (group_set,) if isinstance(group_set, Grouping) else group_set.groupings
    blocks = []
    for grouping in groupings:
        options = ["partition"] if grouping.partition else []
        if grouping.other != DEFAULT_OTHER:
            other = _toml_str(grouping.other) if _needs_quotes(grouping.other, ",") else grouping.other
            options.append(f"other = {other}")
        header = f"[{_line_name(grouping.name, ']')}]" + (" " + ", ".join(options) if options else "")
        blocks.append("\n".join([header, *(g.describe() for g in grouping.groups)]))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def describe(group_set: GroupSet) -> pd.DataFrame:
    """One row per group (grouping, group, emotions, min confidence, partition, other): for listings."""
    rows = [
        {
            "grouping": g.name,
            "group": x.name,
            "emotions": ", ".join(x.emotions),
            "min confidence": x.min_confidence,
            "partition": g.partition,
            "other": g.other,
        }
        for g in group_set.groupings
        for x in g.groups
    ]
    return pd.DataFrame(rows, columns=["grouping", "group", "emotions", "min confidence", "partition", "other"])


# ---------------------------------------------------------------------------
# Files and the active set
# ---------------------------------------------------------------------------


def load(path: str | Path, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    """A groups file (``.json`` as JSON, anything else as TOML); ``GroupError`` names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GroupError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GroupError(f"{path}: cannot be read ({exc})") from None
    parse = parse_json if path.suffix.lower() == ".json" else parse_toml
    try:
        return parse(text, class_names)
    except GroupError as exc:
        raise GroupError([f"{path}: {p}" for p in exc.problems]) from None


def save(group_set: GroupSet, path: str | Path | None = None, class_names: Sequence[str] = config.EMOTIONS) -> Path:
    """Validate and write ``group_set`` (TOML, or JSON for ``.json``) atomically; the active set follows.

    ``path`` defaults to ``config.GROUPS_FILE``. Raises ``GroupError`` (invalid, or the file
    cannot be written).
    """
    group_set = validate(group_set, class_names)
    path = Path(path) if path is not None else Path(config.GROUPS_FILE)
    text = to_json(group_set) if path.suffix.lower() == ".json" else to_toml(group_set)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise GroupError(f"{path}: cannot be written ({exc})") from None
    if _same_file(path, config.GROUPS_FILE):
        with _LOCK:
            global _ACTIVE
            _ACTIVE = (group_set.with_sentiment(), "")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


_LOCK = threading.Lock()
_ACTIVE: tuple[GroupSet, str] | None = None


def load_active(path: str | Path | None = None) -> tuple[GroupSet, str]:
    """The groups of ``path`` (default ``config.GROUPS_FILE``) and ``""``; or, when it is missing or
    invalid, the built-in sentiment alone and a message saying why. Never raises."""
    path = Path(path) if path is not None else Path(config.GROUPS_FILE)
    try:
        return load(path).with_sentiment(), ""
    except GroupError as exc:
        message = f"Emotion groups not loaded, using sentiment only: {exc}"
    except Exception as exc:  # whatever the file holds, the app starts
        message = f"Emotion groups not loaded, using sentiment only: {path}: {type(exc).__name__}: {exc}"
    LOGGER.warning(message)
    return default_set(), message


def active() -> GroupSet:
    """The process-wide groups (``FER_GROUPS_FILE``, read once; sentiment always included)."""
    global _ACTIVE
    current = _ACTIVE
    if current is None:
        with _LOCK:
            if _ACTIVE is None:
                _ACTIVE = load_active()
            current = _ACTIVE
    return current[0]


def active_problem() -> str:
    """Why the groups file was not used (``""`` when it was)."""
    active()
    return _ACTIVE[1] if _ACTIVE else ""


def reload() -> GroupSet:
    """Read ``config.GROUPS_FILE`` again (after it changed on disk or the setting changed)."""
    global _ACTIVE
    with _LOCK:
        _ACTIVE = load_active()
    return _ACTIVE[0]


def sentiment() -> Grouping:
    """The sentiment grouping in force (the active file's, or the built-in one)."""
    return active().sentiment


# ---------------------------------------------------------------------------
# The per-face results table (src/analytics/aggregates.py's columns)
# ---------------------------------------------------------------------------


def faces_mask(df: pd.DataFrame) -> pd.Series:
    """The rows of a results table that are faces (status ok, with an emotion)."""
    return (df["status"] == "ok") & (df["emotion"] != "")


def memberships(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """One boolean column per bucket of ``grouping``, one row per row of ``df`` (non-faces all False)."""
    faces = faces_mask(df).to_numpy(bool)
    emotion = df["emotion"].astype(str)
    conf = pd.to_numeric(df["confidence"], errors="coerce").to_numpy(float)
    out: dict[str, np.ndarray] = {}
    for group in grouping.groups:
        hit = faces & emotion.isin(group.emotions).to_numpy(bool)
        if group.min_confidence is not None:
            with np.errstate(invalid="ignore"):
                hit &= conf >= group.min_confidence
        out[group.name] = hit
    none = faces & ~np.any(list(out.values()), axis=0) if out else faces
    if grouping.other:
        out[grouping.other] = out.get(grouping.other, np.zeros(len(df), bool)) | none
    return pd.DataFrame({b: out[b] for b in grouping.buckets}, index=df.index)


def labels(df: pd.DataFrame, grouping: Grouping) -> pd.Series:
    """Each row's first bucket (a partition's only one); ``""`` for non-faces and uncounted faces."""
    member = memberships(df, grouping)
    if member.empty or not len(member.columns):
        return pd.Series("", index=df.index, dtype=object)
    values = member.to_numpy(bool)
    names = np.array(member.columns, dtype=object)
    first = names[values.argmax(axis=1)]
    return pd.Series(np.where(values.any(axis=1), first, ""), index=df.index, dtype=object)


def counts(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """Faces per bucket (``group``, ``faces``, ``share`` of all faces), in the grouping's order."""
    member = memberships(df, grouping)
    total = int(faces_mask(df).sum())
    faces = member.sum(axis=0).to_numpy(int) if len(member.columns) else np.zeros(0, int)
    return pd.DataFrame(
        {
            "group": list(member.columns),
            "faces": faces,
            "share": faces / total if total else 0.0,
        }
    )


def soft_scores(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """Per row, each group's soft score: the sum of its members' probability columns.

    Works on any table with one probability column per label (the per-face table, the video
    timeline's mean probabilities); members without a column add nothing. NaN where the
    row has no probabilities.
    """
    out = {}
    for group in grouping.groups:
        cols = [e for e in group.emotions if e in df.columns]
        probs = df[cols].apply(pd.to_numeric, errors="coerce") if cols else pd.DataFrame(index=df.index)
        out[group.name] = probs.sum(axis=1, min_count=1) if cols else pd.Series(np.nan, index=df.index)
    return pd.DataFrame(out, index=df.index, columns=list(grouping.group_names))


def mean_soft_scores(df: pd.DataFrame, grouping: Grouping) -> pd.DataFrame:
    """Each group's mean soft score over the faces of a results table (``group``, ``score``; NaN without faces)."""
    scores = soft_scores(df[faces_mask(df)], grouping)
    means = scores.mean(axis=0) if len(scores) else pd.Series(np.nan, index=scores.columns)
    return pd.DataFrame({"group": list(grouping.group_names), "score": means.to_numpy(float)})


def column_names(groupings: Iterable[Grouping], taken: Iterable[str] = ()) -> dict[tuple[str, str], str]:
    """A unique column name for each (grouping, bucket): the bucket's own name, or
    ``grouping: bucket`` when that is taken (by ``taken`` or another grouping's bucket)."""
    groupings = list(groupings)
    taken = set(taken)
    count: dict[str, int] = {}
    for g in groupings:
        for b in g.buckets:
            count[b] = count.get(b, 0) + 1
    names: dict[tuple[str, str], str] = {}
    for g in groupings:
        for b in g.buckets:
            name = b if count[b] == 1 and b not in taken else f"{g.name}: {b}"
            base, n = name, 2
            while name in taken:
                name, n = f"{base} ({n})", n + 1
            taken.add(name)
            names[(g.name, b)] = name
    return names


__all__ = [
    "Group",
    "GroupError",
    "GroupSet",
    "Grouping",
    "active",
    "active_problem",
    "builtin_sentiment",
    "column_names",
    "counts",
    "default_set",
    "describe",
    "faces_mask",
    "from_dict",
    "labels",
    "load",
    "load_active",
    "mean_soft_scores",
    "memberships",
    "name_problem",
    "parse_json",
    "parse_lines",
    "parse_toml",
    "reload",
    "save",
    "sentiment",
    "soft_scores",
    "to_dict",
    "to_json",
    "to_lines",
    "to_toml",
    "validate",
]


def sentiment_of(emotion: str) -> str:
    """Sentiment bucket of an emotion label (unknown labels count as the sentiment grouping's
    ``other``: neutral), by the sentiment grouping in force (``sentiment()``)."""
    return sentiment().label_of_emotion(emotion)
