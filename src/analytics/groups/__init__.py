"""Emotion groups: user-defined categories over the model's labels; sentiment is one of them.

Definitions (``model``)
-----------------------
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
* The grouping named ``sentiment`` is the one the app's sentiment uses (``sentiment_of``,
  ``aggregates.sentiment_counts``, ``net_sentiment``, the box colours): it must be a
  partition into exactly *positive*, *neutral* and *negative*, without confidence
  thresholds, whose ``other`` is one of the three. When the groups file has none, the
  built-in one (``config.SENTIMENT``) is used.

Group and grouping names are user data (``names``): kept exactly as written, never read as
markup; pages show them as plain text and CSV cells go through ``src.common.sanitize``.

The modules
-----------
``names`` (name rules, quoting) < ``model`` (the definitions, ``GroupError``, built-in
sentiment) < ``validation`` (every problem at once, closest-label suggestions) < ``toml_file``
(groups files: TOML only, a ``.json`` one is refused with how to convert it) and ``lines``
(the dashboard editor's line syntax) < ``active_set`` (the process-wide set from
``FER_GROUPS_FILE``, atomic saves, ``sentiment_of``); ``tables`` counts groups in results
tables. Import from this package: the names below are the public API.
"""

from src.analytics.groups.active_set import (
    active,
    active_problem,
    load_active,
    reload,
    save,
    sentiment,
    sentiment_of,
)
from src.analytics.groups.lines import parse_lines, to_lines
from src.analytics.groups.model import (
    DEFAULT_OTHER,
    SENTIMENT,
    SENTIMENT_BUCKETS,
    Group,
    GroupError,
    Grouping,
    GroupSet,
    builtin_sentiment,
    default_set,
)
from src.analytics.groups.names import NAME_MAX, name_problem
from src.analytics.groups.tables import (
    column_names,
    counts,
    describe,
    faces_mask,
    labels,
    mean_soft_scores,
    memberships,
    soft_scores,
)
from src.analytics.groups.toml_file import FILE_VERSION, from_dict, load, parse_toml, to_dict, to_toml
from src.analytics.groups.validation import MAX_GROUPINGS, MAX_GROUPS, MAX_TEXT, validate

__all__ = [
    "DEFAULT_OTHER",
    "FILE_VERSION",
    "MAX_GROUPINGS",
    "MAX_GROUPS",
    "MAX_TEXT",
    "NAME_MAX",
    "SENTIMENT",
    "SENTIMENT_BUCKETS",
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
    "parse_lines",
    "parse_toml",
    "reload",
    "save",
    "sentiment",
    "sentiment_of",
    "soft_scores",
    "to_dict",
    "to_lines",
    "to_toml",
    "validate",
]
