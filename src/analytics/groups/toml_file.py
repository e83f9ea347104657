"""Groups files: TOML, the one storage syntax (``FER_GROUPS_FILE``, ``inputs/emotion_groups.toml``).

The schema::

    version = 1
    [[groupings]]
    name = "custom"          # partition = false and other = "other" by default
    [[groupings.groups]]
    name = "delighted"
    emotions = ["happy"]
    min_confidence = 0.7     # optional

Problems say where they are by position (``grouping 2, group 1: ...``). JSON groups files are
not read: a ``.json`` path is refused with a ``GroupError`` that shows how to write it as TOML.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from src import config
from src.analytics.groups.model import DEFAULT_OTHER, GroupError, GroupSet
from src.analytics.groups.names import quoted
from src.analytics.groups.validation import RawGroup, RawGrouping, build, check_size

FILE_VERSION = 1

# Shown when a JSON groups file is refused; a test checks that it parses.
TOML_EXAMPLE = """\
version = 1
[[groupings]]
name = "custom"
[[groupings.groups]]
name = "delighted"
emotions = ["happy"]
min_confidence = 0.7"""

_TOP_KEYS = {"version", "groupings"}
_GROUPING_KEYS = {"name", "partition", "other", "groups"}
_GROUP_KEYS = {"name", "emotions", "min_confidence"}
_CONVERSION = (
    'the keys stay the same: each object of "groupings" becomes a [[groupings]] table and each '
    'object of its "groups" a [[groupings.groups]] table'
)


def from_dict(data: object, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    """A ``GroupSet`` from the parsed schema (see the module docstring)."""
    if not isinstance(data, dict):
        raise GroupError("the groups file must hold a table with a list of groupings")
    problems: list[str] = []
    extra = sorted(set(data) - _TOP_KEYS)
    if extra:
        problems.append(f"unknown key {quoted(extra[0])} at the top (expected version and groupings)")
    version = data.get("version", FILE_VERSION)
    if version != FILE_VERSION:
        problems.append(f"unsupported version {version!r} (this program reads version {FILE_VERSION})")
    groupings = data.get("groupings", [])
    if not isinstance(groupings, list):
        raise GroupError([*problems, "groupings must be a list"])
    raw: list[RawGrouping] = []
    for i, item in enumerate(groupings, 1):
        where = f"grouping {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a table with name and groups")
            continue
        for key in sorted(set(item) - _GROUPING_KEYS):
            problems.append(f"{where}: unknown key {quoted(key)} (expected name, partition, other, groups)")
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
                problems.append(f"{at}: unknown key {quoted(key)} (expected name, emotions, min_confidence)")
            raw_groups.append(RawGroup(g.get("name"), g.get("emotions", []), g.get("min_confidence"), at))
        raw.append(
            RawGrouping(
                item.get("name"), item.get("partition", False), item.get("other", DEFAULT_OTHER), raw_groups, where
            )
        )
    try:
        result = build(raw, class_names)
    except GroupError as exc:
        problems.extend(exc.problems)
    if problems:
        raise GroupError(problems)
    return result


def to_dict(group_set: GroupSet) -> dict:
    """The schema of ``group_set`` as plain data (what ``to_toml`` writes)."""
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


def parse_toml(text: str, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    """The groupings of a groups file's text; raises ``GroupError`` with every problem."""
    check_size(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        hint = f" (this looks like JSON; groups files are TOML: {_CONVERSION})" if text.lstrip()[:1] == "{" else ""
        raise GroupError(f"not valid TOML: {exc}{hint}") from None
    return from_dict(data, class_names)


def to_toml(group_set: GroupSet) -> str:
    """``group_set`` as a groups file; ``parse_toml`` reads it back."""
    lines = [
        "# Emotion groups (src/analytics/groups/): a face is in a group when its top emotion is a member",
        "# and its confidence is at least min_confidence (if set). Edit here or in the dashboard.",
        f"version = {FILE_VERSION}",
    ]
    for grouping in group_set.groupings:
        lines += ["", "[[groupings]]", f"name = {quoted(grouping.name)}"]
        lines += [f"partition = {'true' if grouping.partition else 'false'}", f"other = {quoted(grouping.other)}"]
        for group in grouping.groups:
            lines += ["", "[[groupings.groups]]", f"name = {quoted(group.name)}"]
            lines.append(f"emotions = [{', '.join(quoted(e) for e in group.emotions)}]")
            if group.min_confidence is not None:
                lines.append(f"min_confidence = {group.min_confidence!r}")
    return "\n".join(lines) + "\n"


def check_path(path: Path) -> None:
    """Refuse a JSON groups file by its name, saying how to write it as TOML."""
    if path.suffix.lower() != ".json":
        return
    example = "\n".join(f"    {line}" for line in TOML_EXAMPLE.splitlines())
    raise GroupError(
        f"{path}: groups files are TOML; JSON groups files are no longer read or written. Write the "
        f"definitions in a .toml file (e.g. {path.with_suffix('.toml')}) and point FER_GROUPS_FILE at it, "
        f"or unset FER_GROUPS_FILE to use inputs/emotion_groups.toml; {_CONVERSION}, e.g.\n{example}"
    )


def load(path: str | Path, class_names: Sequence[str] = config.EMOTIONS) -> GroupSet:
    """A groups file (TOML; a ``.json`` name is refused); ``GroupError`` names the file."""
    path = Path(path)
    check_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GroupError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GroupError(f"{path}: cannot be read ({exc})") from None
    try:
        return parse_toml(text, class_names)
    except GroupError as exc:
        raise GroupError([f"{path}: {p}" for p in exc.problems]) from None
