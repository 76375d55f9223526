"""Validation of model and index names: a name becomes a folder, so it must not escape its parent.

Every refusal names the rule it breaks (``rule 'no-leading-dot'``), so a client can tell what to change.
"""

from __future__ import annotations

import re
import unicodedata

from xalign.modelstore.errors import InvalidNameError

MAX_NAME_LENGTH = 128

# Letters, digits, and . _ - inside; must start with a letter or digit so no name is hidden or relative.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# (rule, what it says), checked in this order; the first broken one is reported.
RULES: dict[str, str] = {
    "not-empty": "must not be empty",
    "max-length": f"must be at most {MAX_NAME_LENGTH} characters",
    "no-control-characters": "must not contain NUL or other control characters",
    "no-path-separator": "must not contain '/' or '\\'",
    "no-dot-dot": "must not contain '..'",
    "no-leading-dot": "must not start with '.'",
    "no-trailing-dot": "must not end with '.'",
    "charset": "must start with a letter or digit and use only letters, digits, '.', '_', '-'",
    "lowercase": "must be lower case (one canonical case: names must not clash on case-insensitive filesystems)",
}


def broken_rule(name: str, *, lowercase: bool = False) -> str | None:
    """The first rule ``name`` breaks (a key of ``RULES``), or None if it is a safe name."""
    checks = (
        ("not-empty", not name),
        ("max-length", len(name) > MAX_NAME_LENGTH),
        ("no-control-characters", any(unicodedata.category(c) == "Cc" for c in name)),
        ("no-path-separator", "/" in name or "\\" in name),
        ("no-dot-dot", ".." in name),
        ("no-leading-dot", name.startswith(".")),
        ("no-trailing-dot", name.endswith(".")),
        ("charset", not _NAME.fullmatch(name)),
        ("lowercase", lowercase and name != name.lower()),
    )
    return next((rule for rule, broken in checks if broken), None)


def _check(name: str, kind: str, *, lowercase: bool) -> str:
    rule = broken_rule(name, lowercase=lowercase)
    if rule is not None:
        shown = repr(name) if len(name) <= MAX_NAME_LENGTH else f"{name[:32]!r}…"
        raise InvalidNameError(f"{kind} name {shown} breaks rule '{rule}': {kind} names {RULES[rule]}")
    return name


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if it is a safe model name, else raise ``InvalidNameError`` naming the rule."""
    return _check(name, "model", lowercase=False)


def validate_index_name(name: str) -> str:
    """Return ``name`` if it is a safe index name (a model name's rules, and lower case), else ``InvalidNameError``.

    Upper case is refused rather than folded: a client that asked for ``Docs`` and got ``docs`` back would
    not find the name it chose in listings, and two clients could not tell they share one index.
    """
    return _check(name, "index", lowercase=True)
