"""Compliance keywords and free-text opt-out requests in inbound texts (COMPLIANCE.md).

A keyword counts only as the whole text: any case, with spaces and punctuation around it
ignored ("Stop.", " stop!! ", "OPT-OUT"). "Please STOP" is not a keyword: carriers define them
as the whole message, and a word inside a sentence ("don't stop the reminders") would opt
people out by accident. Sentences that ask to stop are caught by `is_revocation` instead, and
flagged for staff to confirm with one click (the FCC's 2024 order: a revocation in any
reasonable words must be honoured).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Keyword = Literal["stop", "start", "help"]

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_NOT_LETTERS = re.compile(r"[\W_]+")


def _words(text: str) -> list[str]:
    """The text's words in capitals, punctuation dropped, after folding full-width and
    compatibility forms ("ＳＴＯＰ")."""
    folded = unicodedata.normalize("NFKC", text)
    return [word for word in _NOT_LETTERS.split(folded.upper()) if word]


def words_of(text: str) -> list[str]:
    """The text's words as keywords are read: capitals, punctuation dropped, full-width and
    compatibility forms folded (other whole-text answers, such as C to confirm, use it)."""
    return _words(text)


def keyword_of(text: str, *, opted_out: bool) -> Keyword | None:
    """The compliance keyword the whole text is, if it is one. "YES" opts back in only for
    someone who opted out (otherwise it is an ordinary answer to a question)."""
    words = _words(text)
    if not 1 <= len(words) <= 2:
        return None
    word = "".join(words)  # "OPT OUT", "STOP ALL", "UN-STOP" are the keywords spaced out
    if word in OPT_OUT_WORDS:
        return "stop"
    if word in OPT_IN_WORDS and (word != "YES" or opted_out):
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


# Free-text revocations: a small set of patterns over the lower-cased text with punctuation
# turned into spaces. Each names what the person wants to stop (texts, messages, contact) or
# asks to be removed, so ordinary sentences ("stop by at 3", "can't stop smiling") don't match.
_CONTACT = r"(?:text(?:s|ing)?|messag(?:e|es|ing)|sms|contact(?:ing)?|call(?:s|ing)?|spam(?:ming)?)"
_REVOCATION_PATTERNS = [
    # "stop texting me", "please stop sending me messages", "stop contacting me"
    rf"\bstop (?:\w+ ){{0,2}}{_CONTACT}\b",
    # "don't text me", "do not message me anymore", "dont contact me"
    rf"\b(?:don ?t|do not|never) (?:\w+ )?{_CONTACT} me\b",
    # "no more texts", "no more messages please"
    rf"\bno more {_CONTACT}\b",
    # "unsubscribe me", "please unsubscribe", "i want to unsubscribe"
    r"\bunsubscribe\b",
    # "take me off your list", "remove me from your list", "remove my number"
    r"\btake (?:me|my number) off\b",
    r"\b(?:remove|delete) (?:me|my number|my (?:phone|cell)(?: number)?)\b",
    # "opt me out", "i want to opt out", "opting out"
    r"\bopt(?:ing)? (?:me )?out\b",
    # "leave me alone"
    r"\bleave me alone\b",
    # "wrong number" people also want the texts to stop
    r"\bwrong number\b",
]
_REVOCATION = re.compile("|".join(f"(?:{pattern})" for pattern in _REVOCATION_PATTERNS))


def is_revocation(text: str) -> bool:
    """True when the text asks, in the person's own words, to stop getting texts."""
    folded = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    words = re.sub(r"[^\w']+|_", " ", folded).replace("'", " ")
    return _REVOCATION.search(" ".join(words.split())) is not None
