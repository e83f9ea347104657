"""The definitions: ``Group``, ``Grouping``, ``GroupSet``, ``GroupError`` and the built-in sentiment.

Semantics are in the package docstring (``src/analytics/groups/__init__.py``). These are plain
frozen values: building them checks nothing; ``validation.validate`` and the parsers do.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from src import config
from src.analytics.groups.names import key, line_name, quoted

SENTIMENT = "sentiment"
SENTIMENT_BUCKETS: tuple[str, ...] = ("positive", "neutral", "negative")
DEFAULT_OTHER = "other"


class GroupError(ValueError):
    """Invalid group definitions; ``problems`` lists every one found, each on its own line of ``str()``."""

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


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
        text = f"{line_name(self.name)} = {' + '.join(self.emotions)}"
        if self.min_confidence is not None:
            text += f" (confidence >= {self.min_confidence!r})"
        return text


@dataclass(frozen=True)
class Grouping:
    """Ordered groups read together; see the package docstring for partition and other."""

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

    def __iter__(self) -> Iterator[Grouping]:
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
                    if group.name == spec if exact else key(group.name) == key(spec):
                        return grouping, group
        grouping_name, sep, group_name = spec.partition(":")
        if sep:
            for grouping in ordered:
                if key(grouping.name) == key(grouping_name):
                    for group in grouping.groups:
                        if key(group.name) == key(group_name):
                            return grouping, group
        known = ", ".join(f"{g.name}:{x.name}" for g in ordered for x in g.groups)
        raise GroupError(f"no group named {quoted(spec)} (groups: {known})")


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
