"""What typed text may hold: one rule for single-line fields, one for multi-line text.

Every single-line field (business name and business info, staff names, client names, tags
and phone numbers, an email's subject, an imported file's name) goes through `single_line`:

- Control characters (Unicode category Cc) go; one that is a space or a line break (tab, CR,
  LF, …), like the line and paragraph separators, becomes a space: the field is one line.
- Invisible format characters (category Cf) go: the bidirectional embeddings, overrides and
  isolates (U+202A–U+202E, U+2066–U+2069) and marks (U+200E, U+200F, U+061C), zero-width
  spaces, soft hyphens, the byte-order mark, tag characters, … All but two: the zero-width
  joiner and non-joiner (U+200D, U+200C), which emoji sequences and names written in Persian,
  Hindi, Bengali and other scripts need.
- Then the spaces around it are trimmed, as they always were.

Why: a right-to-left override in a client's name ("Ana", U+202E, "gnp.exe" shows as
"Anaexe.png") reverses what follows it wherever the name is shown: lists, cards,
notifications, emails to staff, the carriers' verification forms. Control characters break
emails, exports and single-line layouts.

Stripped, not refused: these characters are invisible, so an error could only name something
the person cannot see or find in the field; they nearly always arrive by pasting (from a
document, a spreadsheet, a phone's contacts), where dropping them is what the person wants.
What is stored is what the person saw, as with the spaces already trimmed. A field that is
empty once cleaned gets the field's usual "Enter …" error. (Email addresses are refused
instead, by `email_validator`, which names the character: an address is an identifier, and
one with a hidden character is not the address the person thinks it is.)

Multi-line text (a text's or an email's body, a note) goes through `multi_line`: line breaks
become LF (browsers send CR LF), line breaks and tabs stay, the other control characters and
the bidirectional embeddings, overrides and isolates go. The marks, joiners and other format
characters stay: real writing in right-to-left scripts and emoji use them in running text. The
composer's live count, the balance charged and the parts sent are all computed from the
cleaned text (the composer's route and `sending.send_text` both clean it first), so the count
a person sees is still the count sent and billed.
"""

from __future__ import annotations

import unicodedata

# Format characters that stay in single-line fields: they join letters and emoji.
_JOINERS = frozenset("\u200c\u200d")

# Bidirectional embeddings, overrides (U+202A–U+202E) and isolates (U+2066–U+2069).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_KEPT_IN_TEXT = frozenset("\n\t")  # control characters multi-line text keeps


def single_line(text: str) -> str:
    """The text as a single-line field stores it (see the module docstring)."""
    kept: list[str] = []
    for character in text:
        category = unicodedata.category(character)
        if category in ("Zl", "Zp") or (category == "Cc" and character.isspace()):
            kept.append(" ")
        elif category not in ("Cc", "Cf") or character in _JOINERS:
            kept.append(character)
    return "".join(kept).strip()


def multi_line(text: str) -> str:
    """The text as a message body or a note stores it (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        character
        for character in text
        if character not in BIDI_CONTROLS
        and (character in _KEPT_IN_TEXT or unicodedata.category(character) != "Cc")
    )
