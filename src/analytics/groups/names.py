"""Group and grouping names: what a name may be, when two are the same, and how one is quoted.

Names are user data: kept exactly as written (any Unicode, no control characters, at most
``NAME_MAX`` characters), never read as markup. Two names that differ only in case or
surrounding spaces are duplicates.
"""

from __future__ import annotations

import json
import unicodedata

NAME_MAX = 60  # characters in a group or grouping name


def key(name: str) -> str:
    """What names are compared by: names that differ only in case or surrounding spaces are duplicates."""
    return name.strip().casefold()


def quoted(text: str) -> str:
    """``text`` as a JSON string: for messages (escapes show control characters and quotes as
    typed) and for files, since a JSON string is also a valid TOML basic string (names never
    hold control characters, and JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def type_name(value: object) -> str:
    """What a parsed value is, in the words of a file's author."""
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def name_problem(name: object, what: str = "group") -> str | None:
    """Why ``name`` cannot be a group (or grouping) name, or None."""
    if name is None:
        return f"a {what} name is missing"
    if not isinstance(name, str):
        return f"the {what} name must be text, not {type_name(name)}"
    if not name.strip():
        return f"a {what} name is empty"
    if len(name) > NAME_MAX:
        return f"the {what} name {quoted(name[:24] + '…')} is {len(name)} characters long; the limit is {NAME_MAX}"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"the {what} name {quoted(name)} contains a control character (U+{ord(ch):04X})"
        if category == "Cs":
            return f"the {what} name {quoted(name)} is not valid text (a lone surrogate U+{ord(ch):04X})"
    return None


def needs_quotes(name: str, specials: str) -> bool:
    """Whether the line syntax must quote ``name``: it is empty, padded, starts like a quote,
    header or comment, or holds one of ``specials`` (what ends a name where it stands)."""
    return not name or name != name.strip() or name[0] in '"[#' or any(c in name for c in specials)


def line_name(name: str, specials: str = "=") -> str:
    """``name`` as written in the line syntax: bare when it reads back the same, else quoted."""
    return quoted(name) if needs_quotes(name, specials) else name
