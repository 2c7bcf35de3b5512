"""How a handset or Vonage counts and splits SMS text (GSM-7 and UCS-2)."""

from __future__ import annotations

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM_BASIC)
_EXTENDED = frozenset(GSM_EXTENDED)

SINGLE_GSM, PART_GSM = 160, 153  # septets
SINGLE_UCS2, PART_UCS2 = 70, 67  # UTF-16 code units


def is_gsm(text: str) -> bool:
    """True when every character is in the GSM-7 alphabet (basic or extension table)."""
    return all(ch in _BASIC or ch in _EXTENDED for ch in text)


def _units(ch: str, unicode: bool) -> int:
    if unicode:
        return 2 if ord(ch) > 0xFFFF else 1
    return 2 if ch in _EXTENDED else 1


def split_parts(text: str, unicode: bool) -> list[str]:
    """Split ``text`` the way a phone network does: one part if it fits, else 153/67 each.

    An extension character (2 septets) or a surrogate pair is never split across parts.
    """
    single, per_part = (SINGLE_UCS2, PART_UCS2) if unicode else (SINGLE_GSM, PART_GSM)
    if sum(_units(ch, unicode) for ch in text) <= single:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        size = _units(ch, unicode)
        if used + size > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += size
    if current:
        parts.append("".join(current))
    return parts
