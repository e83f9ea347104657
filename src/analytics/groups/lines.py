"""The dashboard editor's line syntax (``parse_lines`` / ``to_lines``)::

    # a comment
    [sentiment] partition, other = neutral
    positive = happy
    negative = angry + disgust + fear + sad
    [custom]
    frustrated = angry + disgust + sad
    delighted = happy (confidence >= 0.7)

Lines before any ``[header]`` belong to a grouping named ``default_name``. A name holding
``=``, ``]`` or surrounding spaces is written as a JSON string (``"a = b" = happy``). Every
problem names its line (``line 3: ...``); an unknown emotion gets the closest label suggested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from src import config
from src.analytics.groups.model import DEFAULT_OTHER, GroupError, Grouping, GroupSet
from src.analytics.groups.names import line_name, quoted
from src.analytics.groups.validation import RawGroup, RawGrouping, build, check_size

_CONDITION = re.compile(
    r"\(\s*(?:min(?:imum)?[ _]?)?conf(?:idence)?\s*(?:>=|≥)\s*(?P<value>[^)\s%]+)\s*(?P<pct>%?)\s*\)\s*$", re.I
)
_SYNTAX = "expected `name = emotion + emotion`, optionally followed by `(confidence >= 0.7)`"


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
    check_size(text)
    problems: list[str] = []
    raw: list[RawGrouping] = []
    current: RawGrouping | None = None
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
                current = RawGrouping(default_name, False, DEFAULT_OTHER, [], "")
                raw.append(current)
            current.groups.append(_group_line(stripped, lineno))
        except GroupError as exc:
            problems.extend(exc.problems)
    if problems:
        raise GroupError(problems)
    return build(raw, class_names)


def _header(line: str, lineno: int) -> RawGrouping:
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
            raise GroupError(f"line {lineno}: unknown option {quoted(option)} (expected `partition` or `other = NAME`)")
        value = value[1:].lstrip()
        if value.startswith('"'):
            other, rest = _take_name(value, lineno, ",")
        else:
            other, _, rest = value.partition(",")
            other = other.strip()
    return RawGrouping(name, partition, other, [], f"line {lineno}")


def _group_line(line: str, lineno: int) -> RawGroup:
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
            raise GroupError(f"line {lineno}: {quoted(match['value'])} is not a number") from None
        rhs = rhs[: match.start()].strip()
    emotions = [e.strip() for e in re.split(r"[+,]", rhs)] if rhs else []
    if any(not e for e in emotions):
        raise GroupError(f"line {lineno}: an emotion is missing between `+` signs")
    return RawGroup(name, emotions, confidence, f"line {lineno}")


def to_lines(group_set: GroupSet | Grouping) -> str:
    """``group_set`` (or one grouping) in the editor's line syntax; ``parse_lines`` reads it back."""
    groupings = (group_set,) if isinstance(group_set, Grouping) else group_set.groupings
    blocks = []
    for grouping in groupings:
        options = ["partition"] if grouping.partition else []
        if grouping.other != DEFAULT_OTHER:
            options.append(f"other = {line_name(grouping.other, ',')}")
        header = f"[{line_name(grouping.name, ']')}]" + (" " + ", ".join(options) if options else "")
        blocks.append("\n".join([header, *(g.describe() for g in grouping.groups)]))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
