"""How a text is split into the parts that are sent, counted and charged.

This is the one function the composer's live count, the balance deduction and the send
pipeline all use, so the count the business sees is the count it is billed and the parts that
go out (COMPLIANCE.md "SMS length and encoding", DESIGN.md §4).

Rules:

- Each part goes out as its own SMS, without concatenation headers, so a part holds at most
  160 GSM-7 septets, or 70 UCS-2 code units when any character of the message is outside
  GSM-7 (then the whole message is UCS-2). A GSM-7 extension character (``^ { } \\ [ ] ~ |``,
  ``€``, form feed) costs 2 septets (escape + character); a character outside the Basic
  Multilingual Plane (most emoji) costs 2 UCS-2 units (a surrogate pair).
- A part never ends inside an escape pair or a surrogate pair, and never inside a grapheme
  cluster (emoji with skin tone, ZWJ sequences, flags, keycaps, a letter with combining marks,
  CR LF) unless that one cluster is longer than a whole part.
- A part ends after the last space or newline that fits, when doing so leaves the total number
  of parts what the greedy split would give; otherwise the part is filled greedily. The space
  at such a split *ends* the previous part (where it is invisible) so that the next text starts
  with a word. (A greedy split can still fall just before a space; that space then starts
  the next part.) Parts keep the text exactly: ``"".join(parts) == text``.
- The 550-character limit counts code points of the Python ``str`` (``len(text)``), which is
  what the composer counts too (``[...text].length`` in JavaScript, not ``.length`` or the
  ``maxlength`` attribute, which count UTF-16 units). A ZWJ family emoji therefore counts as
  several characters towards 550, while a single emoji counts as one.

Grapheme clusters are found by the small hand-written ``_clusters`` helper below: the
``regex`` package (``\\X``) is not installed, and these few rules cover what people type.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from app.services.errors import ServiceError

MAX_CHARACTERS = 550
"""The most characters (code points) one message may have; the composer stops there too."""

GSM_CAPACITY = 160
"""Septets in one part of a GSM-7 message."""

UCS2_CAPACITY = 70
"""UTF-16 code units in one part of a UCS-2 message."""

Encoding = Literal["GSM-7", "UCS-2"]

# The GSM 7-bit default alphabet, 3GPP TS 23.038 (formerly GSM 03.38) §6.2.1, "default
# alphabet table", as mapped to Unicode by unicode.org's GSM0338.TXT. Listed row by row in
# table order (0x00-0x7F); position 0x1B is the escape to the extension table and is left out.
# 0x09 is the capital Ç (U+00C7): some phones show it as ç, but ç itself is not in the table,
# so a text with ç is counted as Unicode and we never under-count.
GSM_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # 0x10-0x1F, without 0x1B (the escape)
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)

# The default alphabet extension table, 3GPP TS 23.038 §6.2.1.1: each is sent as the escape
# 0x1B followed by its code (form feed 0x0A, ^ 0x14, { 0x28, } 0x29, \ 0x2F, [ 0x3C, ~ 0x3D,
# ] 0x3E, | 0x40, € 0x65), so each costs 2 septets. The national language shift tables are
# not used: carriers do not reliably support them.
GSM_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM = GSM_BASIC | GSM_EXTENSION

# Where a part may end at a word boundary: after one of these clusters.
_BREAKS = frozenset({" ", "\n", "\r", "\r\n", "\t"})

# The composer's one-click swap: typographic punctuation for its plain GSM-7 equivalent.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",  # ‘ left single quote
        "\u2019": "'",  # ’ right single quote / apostrophe
        "\u201a": "'",  # ‚ single low-9 quote
        "\u201b": "'",  # ‛ single high-reversed-9 quote
        "\u2032": "'",  # ′ prime
        "\u201c": '"',  # “ left double quote
        "\u201d": '"',  # ” right double quote
        "\u201e": '"',  # „ double low-9 quote
        "\u201f": '"',  # ‟ double high-reversed-9 quote
        "\u2033": '"',  # ″ double prime
        "\u2010": "-",  # ‐ hyphen
        "\u2011": "-",  # ‑ non-breaking hyphen
        "\u2012": "-",  # ‒ figure dash
        "\u2013": "-",  # – en dash
        "\u2014": "-",  # — em dash
        "\u2015": "-",  # ― horizontal bar
        "\u2212": "-",  # − minus sign
        "\u2026": "...",  # … ellipsis
        "\u00a0": " ",  # no-break space
        "\u2007": " ",  # figure space (no-break)
        "\u202f": " ",  # narrow no-break space
    }
)

_ZWJ = "\u200d"
_NAMES = {"\t": "tab", "\v": "vertical tab"}  # controls unicodedata has no name for
_MAX_REASONS = 5


@dataclass(frozen=True)
class SplitText:
    """A message split into the parts that are sent; every part is one text, billed as one."""

    parts: tuple[str, ...]
    """The parts in order; ``"".join(parts)`` is the original message."""
    encoding: Encoding
    """"GSM-7" when every character is in the GSM 7-bit alphabet, otherwise "UCS-2"."""
    units_used: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2) in the last part, as in "142/160"."""
    part_capacity: int
    """What one part can hold in this encoding: 160 or 70."""
    characters: int
    """Characters as the 550 limit counts them: code points of the Python str."""
    unicode_because: tuple[str, ...]
    """Up to five distinct characters (as a person sees them: grapheme clusters) that made the
    message Unicode, in order of appearance; empty for GSM-7."""

    @property
    def count(self) -> int:
        """How many texts the message is sent as, and how many it costs."""
        return len(self.parts)

    @property
    def too_long(self) -> bool:
        """Whether the message is over the 550-character limit."""
        return self.characters > MAX_CHARACTERS

    @property
    def summary(self) -> str:
        """The composer's line, in plain English.

        One text: "142/160 · 1 text", or "45/70 · 1 text · Unicode because of ’".
        More: "2 texts · 320 characters", or "3 texts · 200 characters · Unicode because of 😀".
        """
        if self.count <= 1:
            texts = "1 text" if self.count == 1 else "0 texts"
            line = f"{self.units_used}/{self.part_capacity} · {texts}"
        else:
            line = f"{self.count} texts · {self.characters} characters"
        if self.unicode_because:
            line += " · Unicode because of " + _plain_list(
                [_shown(cluster) for cluster in self.unicode_because]
            )
        return line


def split_text(text: str) -> SplitText:
    """Split a message into the parts that are sent (see the module docstring for the rules).

    Never refuses anything: the composer calls it on every keystroke. An empty text has no
    parts. Use ``check_text`` before saving or sending.
    """
    encoding: Encoding = "GSM-7" if all(ch in _GSM for ch in text) else "UCS-2"
    capacity = GSM_CAPACITY if encoding == "GSM-7" else UCS2_CAPACITY
    cost = _septets if encoding == "GSM-7" else _utf16_units

    clusters = list(_clusters(text))
    tokens: list[str] = []
    for cluster in clusters:
        if cost(cluster) <= capacity:
            tokens.append(cluster)
        else:  # a cluster longer than a whole part (a letter with dozens of accents)
            tokens.extend(_atoms(cluster))
    costs = [cost(token) for token in tokens]

    parts: list[str] = []
    start = 0
    remaining = _greedy_count(costs, 0, capacity)
    while start < len(tokens):
        end = _greedy_end(costs, start, capacity)
        if end < len(tokens):
            word_end = _last_break(tokens, start, end)
            if word_end and _greedy_count(costs, word_end, capacity) == remaining - 1:
                end = word_end
        parts.append("".join(tokens[start:end]))
        start = end
        remaining -= 1

    return SplitText(
        parts=tuple(parts),
        encoding=encoding,
        units_used=cost(parts[-1]) if parts else 0,
        part_capacity=capacity,
        characters=len(text),
        unicode_because=_unicode_because(clusters) if encoding == "UCS-2" else (),
    )


def check_text(text: str) -> SplitText:
    """``split_text`` for a message about to be saved and sent: refuses an empty or
    whitespace-only message and one over 550 characters with a ServiceError."""
    if not text.strip():
        raise ServiceError("Write a message before sending.", field="body")
    if len(text) > MAX_CHARACTERS:
        raise ServiceError(
            f"Texts can be at most {MAX_CHARACTERS} characters; this one has {len(text)}.",
            field="body",
        )
    return split_text(text)


def plain_quotes(text: str) -> str:
    """The text with smart quotes, primes, dashes, the ellipsis and no-break spaces swapped for
    their plain GSM-7 equivalents (' " - ... and space): the composer's one-click swap.

    Everything else is left as it is, so the result may still be Unicode (an emoji, say), and
    an ellipsis becomes three characters, so check the length again afterwards."""
    return text.translate(_PLAIN)


def _septets(s: str) -> int:
    """GSM-7 septets for a string of GSM characters: 2 for extension characters."""
    return len(s) + sum(1 for ch in s if ch in GSM_EXTENSION)


def _utf16_units(s: str) -> int:
    """UCS-2 (UTF-16) code units: 2 for a character outside the Basic Multilingual Plane."""
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def _greedy_end(costs: list[int], start: int, capacity: int) -> int:
    """The index after the last token that fits in a part starting at ``start``."""
    used = 0
    end = start
    while end < len(costs) and used + costs[end] <= capacity:
        used += costs[end]
        end += 1
    return end


def _greedy_count(costs: list[int], start: int, capacity: int) -> int:
    """Parts needed for the tokens from ``start`` on, filling each part as full as it goes
    (which is the fewest possible, as every token fits in a part on its own)."""
    count = 0
    while start < len(costs):
        start = _greedy_end(costs, start, capacity)
        count += 1
    return count


def _last_break(tokens: list[str], start: int, end: int) -> int:
    """The index just after the last space or newline in ``tokens[start:end]``, or 0."""
    for index in range(end, start, -1):
        if tokens[index - 1] in _BREAKS:
            return index
    return 0


def _clusters(text: str) -> Iterator[str]:
    """The text as grapheme clusters, by a small subset of Unicode's UAX #29 rules.

    Kept together: CR LF; a character with the combining marks, variation selectors, emoji
    skin-tone modifiers, tag characters and zero-width joiners after it; the character after a
    zero-width joiner; pairs of regional indicators (flags); a high surrogate code point with
    the low one after it (only in strs built from broken UTF-16). Not handled: Hangul jamo
    sequences, Indic conjuncts and prepended marks, which split where a space would not.
    """
    cluster = ""
    for ch in text:
        if cluster and _joins(cluster, ch):
            cluster += ch
        else:
            if cluster:
                yield cluster
            cluster = ch
    if cluster:
        yield cluster


def _joins(cluster: str, ch: str) -> bool:
    """Whether ``ch`` continues the grapheme cluster ``cluster``."""
    last = cluster[-1]
    if ch < "\u0300" and last < "\u0300":  # fast path: nothing below the combining marks joins
        return last == "\r" and ch == "\n"
    if last == "\r":
        return ch == "\n"
    if unicodedata.category(last) == "Cc":
        return False  # nothing attaches to a control character (tab, LF, form feed)
    if _is_extend(ch):
        return True
    if last == _ZWJ:
        # Emoji ZWJ sequences (👩‍💻); never a space, newline or control, so words still split.
        return unicodedata.category(ch) not in ("Cc", "Zs", "Zl", "Zp")
    if _is_regional_indicator(ch) and _is_regional_indicator(last):
        # Flags are pairs: join only when the cluster holds an odd number of indicators.
        return sum(1 for c in cluster if _is_regional_indicator(c)) % 2 == 1
    return 0xD800 <= ord(last) <= 0xDBFF and 0xDC00 <= ord(ch) <= 0xDFFF


def _is_extend(ch: str) -> bool:
    """Marks and modifiers that belong to the character before them."""
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")  # combining marks, keycap, VS
        or ch == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (text/emoji presentation)
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _atoms(cluster: str) -> Iterator[str]:
    """A cluster too long for one part, as the smallest pieces it may be split into: code
    points, keeping a surrogate pair of code points together."""
    index = 0
    while index < len(cluster):
        if (
            0xD800 <= ord(cluster[index]) <= 0xDBFF
            and index + 1 < len(cluster)
            and 0xDC00 <= ord(cluster[index + 1]) <= 0xDFFF
        ):
            yield cluster[index : index + 2]
            index += 2
        else:
            yield cluster[index]
            index += 1


def _unicode_because(clusters: list[str]) -> tuple[str, ...]:
    """Up to five distinct clusters holding a character outside GSM-7, in order."""
    found: list[str] = []
    for cluster in clusters:
        if cluster not in found and any(ch not in _GSM for ch in cluster):
            found.append(cluster)
            if len(found) == _MAX_REASONS:
                break
    return tuple(found)


def _shown(cluster: str) -> str:
    """A cluster as the summary shows it: itself, or its name when it cannot be seen."""
    if all(unicodedata.category(ch)[0] in "ZCM" for ch in cluster):
        return " + ".join(
            _NAMES.get(ch) or unicodedata.name(ch, f"U+{ord(ch):04X}").lower() for ch in cluster
        )
    return cluster


def _plain_list(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
