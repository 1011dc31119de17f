"""The built-in masks: volatile values (uuid, ISO-8601, epoch seconds and
milliseconds, hex ids) found in text (pure).

Every built-in mask matches within a run of hex-ish characters, so
``RUN`` finds the runs in one scan and ``classify`` names a whole run with
cheap string tests first; ``INNER`` searches inside a run when the whole is
no mask. ``text_tokens`` finds a text's volatile tokens (the masks' matches
and any other standalone number) for text compared token by token. The
``Normalizer`` (``normalize.py``) applies them to messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "FULL",
    "HEX_CHARS",
    "INNER",
    "MASK_ORDER",
    "RUN",
    "classify",
    "hex_shaped_equal",
    "is_epoch_number",
    "outside_string",
    "text_tokens",
]

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
# Epoch seconds 2001-2033 (10 digits) or milliseconds (13 digits), optional fraction.
_EPOCH = r"1\d{9}(?:\d{3})?(?:\.\d+)?"
_HEX = r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}"
# Every built-in mask matches within a run of these characters: find the runs in one
# scan, then classify each (a whole run first, the patterns inside it only if need be).
RUN = re.compile(r"[0-9a-fA-F][-0-9a-fA-F:.T+Z]{7,}")
FULL = {
    "uuid": re.compile(_UUID),
    "iso8601": re.compile(_ISO),
    "epoch": re.compile(_EPOCH),
    "hex": re.compile(_HEX),
}
INNER = {
    "uuid": re.compile(_UUID),
    "iso8601": re.compile(_ISO),
    "epoch": re.compile(r"(?<![\d.])" + _EPOCH + r"(?![\d.])"),
    "hex": re.compile(r"(?<![0-9A-Za-z])" + _HEX + r"(?![0-9A-Za-z])"),
}
MASK_ORDER = ("uuid", "iso8601", "epoch", "hex")
_HELD = re.compile("\x00(\\d+)\x00")
# A text's tokens: what the masks match, and any other standalone number (a counter, a
# random id): text compared token by token learns a number that varies between baseline
# runs as noise at its position, where the whole text would never be noise.
_NUMBER = r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])"
_TOKENS = re.compile(
    "|".join(f"(?P<{name}>{INNER[name].pattern})" for name in MASK_ORDER)
    + f"|(?P<number>{_NUMBER})"
)
HEX_CHARS = frozenset("0123456789abcdefABCDEF")


def classify(run: str) -> str | None:
    """Which built-in mask a whole run is (cheap string tests first), or None."""
    n = len(run)
    if n == 36 and run[8] == "-" and FULL["uuid"].fullmatch(run):
        return "uuid"
    if n >= 16 and run[4] == "-" and run[10] == "T" and FULL["iso8601"].fullmatch(run):
        return "iso8601"
    if run[0] == "1" and (n == 10 or n == 13 or (n > 11 and run[10] == ".") or (
        n > 14 and run[13] == "."
    )) and FULL["epoch"].fullmatch(run):  # fmt: skip
        return "epoch"
    if HEX_CHARS.issuperset(run) and FULL["hex"].fullmatch(run):
        return "hex"
    return None


def outside_string(text: str, start: int, end: int) -> bool:
    """Whether a number at text[start:end] looks like a JSON value (not inside a string)."""
    i = start - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    j = end
    while j < len(text) and text[j] in " \t\r\n":
        j += 1
    return i >= 0 and j < len(text) and text[i] in ":,[" and text[j] in ",}]"


def is_epoch_number(v: object) -> bool:
    """Whether a JSON number is in the epoch mask's range (seconds or milliseconds)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    a = abs(v)
    return 1e9 <= a < 2e9 or 1e12 <= a < 2e12


def text_tokens(
    text: str, custom: Iterable[tuple[re.Pattern[str], str]] = ()
) -> tuple[str, list[tuple[str, str]]]:
    """The volatile tokens of a text: every built-in mask's matches, after ``custom``
    (regex, ``<name>``) pairs. Returns the text with each token replaced by its
    ``<name>`` (the skeleton) and the (name, token) pairs, custom ones first."""
    custom_found: list[tuple[str, str]] = []
    for regex, name in custom:

        def hold(m: re.Match[str], name: str = name) -> str:
            custom_found.append((name, m.group()))
            return f"\x00{len(custom_found) - 1}\x00"

        text = regex.sub(hold, text)
    found: list[tuple[str, str]] = []

    def builtin(m: re.Match[str]) -> str:
        found.append((f"<{m.lastgroup}>", m.group()))
        return f"<{m.lastgroup}>"

    skeleton = _TOKENS.sub(builtin, text)
    if custom_found:
        skeleton = _HELD.sub(lambda m: custom_found[int(m.group(1))][0], skeleton)
    return skeleton, custom_found + found


_HEX_SLOT = "<hex>"
_ANY_HEX = "0" * 8  # stands for a masked id when matched against the other side's pattern


@lru_cache(maxsize=1024)
def _hex_pattern(masked: str) -> re.Pattern[str]:
    return re.compile("[0-9a-fA-F]{8,}".join(re.escape(part) for part in masked.split(_HEX_SLOT)))


def hex_shaped_equal(a: str, b: str) -> bool:
    """Whether two masked strings differ only where one has ``<hex>`` and the other a run of
    8+ hex characters the mask let through.

    The hex mask takes a run for an id only when it has both a digit and a letter (else
    every long number in a text would be an id), so a random id that happens to be all
    digits (``J-06054180``: one 8-character ``token_hex`` in 43) stays as it is while its
    counterpart becomes ``J-<hex>``. Compared in pairs, the masked side says where an id
    was: the other side's run there is an id too.
    """
    if _HEX_SLOT not in a and _HEX_SLOT not in b:
        return False
    return (
        _HEX_SLOT in a
        and _hex_pattern(a).fullmatch(b.replace(_HEX_SLOT, _ANY_HEX)) is not None
    ) or (
        _HEX_SLOT in b
        and _hex_pattern(b).fullmatch(a.replace(_HEX_SLOT, _ANY_HEX)) is not None
    )
