"""The one template language for texts Twoway writes for a business (DESIGN.md §10): automatic
messages about appointments now, campaigns and saved replies later. Same placeholders, same
validation, same preview through the one split function (`app.services.segments`).

A template is plain text with placeholders in braces: ``Hi {client_first_name}, see you on
{appointment_date}``. Braces are only for placeholders: a ``{`` or ``}`` that does not open
or close a known placeholder name is refused, so a typo never reaches a client as
``{clinet_name}``.

Each feature passes the placeholders it can fill (`placeholders=`): `APPOINTMENT_PLACEHOLDERS`
for texts about an appointment, `CLIENT_PLACEHOLDERS` (the client and the business only) for
campaigns and saved replies. A placeholder of another set is "unknown" there, and the error
lists the ones that are known.

**The 550-character limit is checked against the worst case** (`worst_case_length`): the
template's own text plus, for every placeholder in it, the longest value it can take, which
is its column's limit (a client's name is at most 120 characters, a location 200, …; see
each `Placeholder.max_length`). A template that passes therefore never renders to a text
the pipeline refuses, whatever the client's name. `render` cuts a value to that same length,
so the guarantee holds even for data stored before a limit (SQLite does not enforce
`String(n)`). Length is counted in code points, as `segments.check_text` counts it.

An empty value (an appointment without a staff member, a business without a phone) renders
as nothing, and the double space it would leave is closed up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.services.errors import ServiceError
from app.services.segments import MAX_CHARACTERS, SplitText, check_text
from app.services.text_input import multi_line


@dataclass(frozen=True)
class Placeholder:
    """A value a template can include: `{name}`."""

    name: str
    description: str  # shown in the editor's list of placeholders
    max_length: int  # the longest value it can take (its column's limit, or its format's)
    sample: str  # what the preview shows for it


def _set(*placeholders: Placeholder) -> dict[str, Placeholder]:
    return {placeholder.name: placeholder for placeholder in placeholders}


# The client and the business: every template can use these.
CLIENT_PLACEHOLDERS: dict[str, Placeholder] = _set(
    Placeholder("client_first_name", "the client's first name", 120, "Sam"),
    Placeholder("client_name", "the client's full name", 120, "Sam Rivera"),
    Placeholder("business_name", "your business's name", 120, "Bright Smile Dental"),
    # E.164 is at most 16 characters; its national or international format at most 20, and
    # the column holds 32.
    Placeholder("business_phone", "your business's phone number", 32, "(555) 010-1234"),
    Placeholder("business_website", "your website", 254, "brightsmile.example.com"),
)

# An appointment's details, for its automatic messages (and reminders).
APPOINTMENT_PLACEHOLDERS: dict[str, Placeholder] = {
    **CLIENT_PLACEHOLDERS,
    **_set(
        Placeholder("service", "the service booked", 120, "Cleaning"),
        # "Wednesday, September 30": the longest weekday and month names, 23 characters.
        Placeholder(
            "appointment_date",
            "the appointment's day, e.g. Tuesday, March 4",
            23,
            "Tuesday, March 4",
        ),
        # "12:30 PM" plus the client's zone where it differs from yours ("12:30 PM +0530").
        Placeholder(
            "appointment_time",
            "its start time (with the client's time zone when it differs from yours)",
            14,
            "3:30 PM",
        ),
        Placeholder("appointment_end_time", "its end time", 14, "4:30 PM"),
        # "1 h 30 min"; the longest a duration is shown as ("99999 h 59 min").
        Placeholder("duration", "how long it lasts, e.g. 1 h 30 min", 14, "1 h"),
        Placeholder("staff_name", "who the client will see", 120, "Dr. Lee"),
        Placeholder("location", "the appointment's location or note", 200, "12 Main Street"),
    ),
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,!?;:])")


def placeholders_in(template: str) -> list[str]:
    """The placeholder names the template uses, in order, repeats included."""
    return _PLACEHOLDER.findall(template)


def _brace_errors(template: str, placeholders: Mapping[str, Placeholder]) -> list[str]:
    """Braces that do not enclose a placeholder name, and names that are not known."""
    errors: list[str] = []
    unknown: list[str] = []
    position = 0
    while position < len(template):
        character = template[position]
        if character == "}":
            errors.append(
                "There is a “}” without its “{”. Braces are only for placeholders such as "
                "{client_first_name}."
            )
            break
        if character != "{":
            position += 1
            continue
        end = template.find("}", position + 1)
        following = template.find("{", position + 1)
        if end == -1 or (following != -1 and following < end):
            errors.append(
                "There is a “{” without its “}”. Braces are only for placeholders such as "
                "{client_first_name}."
            )
            break
        name = template[position + 1 : end]
        if name not in placeholders and name not in unknown:
            unknown.append(name)
        position = end + 1
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        known = ", ".join("{" + name + "}" for name in placeholders)
        errors.insert(
            0,
            f"{'This placeholder is' if len(unknown) == 1 else 'These placeholders are'} not "
            f"known: {shown}. You can use: {known}.",
        )
    return errors


def worst_case_length(
    template: str, *, placeholders: Mapping[str, Placeholder] = APPOINTMENT_PLACEHOLDERS
) -> int:
    """The most characters the template can render to: its own text plus the longest value
    of each placeholder it uses (see the module docstring). Unknown names count as written."""
    length = len(template)
    for name in placeholders_in(template):
        if name in placeholders:
            length += placeholders[name].max_length - len(name) - 2
    return length


def validate(
    template: str,
    *,
    placeholders: Mapping[str, Placeholder] = APPOINTMENT_PLACEHOLDERS,
    limit: int = MAX_CHARACTERS,
) -> list[str]:
    """What is wrong with the template, in plain words (empty: nothing). Refuses an empty
    text, unknown placeholders (listing the known ones), unbalanced braces, and a text that
    could render to more than `limit` characters (550, less what a feature appends)."""
    if not template.strip():
        return ["Write the message's text."]
    errors = _brace_errors(template, placeholders)
    if errors:
        return errors
    worst = worst_case_length(template, placeholders=placeholders)
    if worst > limit:
        longest = sorted(
            {name for name in placeholders_in(template)},
            key=lambda name: -placeholders[name].max_length,
        )
        detail = ", ".join(
            "{" + name + "} up to " + str(placeholders[name].max_length) for name in longest[:3]
        )
        errors.append(
            f"This text could be {worst} characters long once its placeholders are filled in "
            f"({detail}), and a text can be at most {limit}. Shorten it or use fewer "
            "placeholders."
        )
    return errors


def check(
    template: str,
    *,
    placeholders: Mapping[str, Placeholder] = APPOINTMENT_PLACEHOLDERS,
    limit: int = MAX_CHARACTERS,
) -> str:
    """The template cleaned as the composer cleans a text (`text_input.multi_line`), or
    ServiceError with every problem `validate` finds."""
    cleaned = multi_line(template).strip()
    errors = validate(cleaned, placeholders=placeholders, limit=limit)
    if errors:
        raise ServiceError(" ".join(errors), field="template")
    return cleaned


def render(
    template: str,
    context: Mapping[str, str | None],
    *,
    placeholders: Mapping[str, Placeholder] = APPOINTMENT_PLACEHOLDERS,
) -> str:
    """The text with each placeholder replaced by its value in `context` (cut to its
    `max_length`; missing or None: nothing). Assumes a template that `validate` accepted; an
    unknown name is left as written."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        placeholder = placeholders.get(name)
        if placeholder is None:
            return match.group(0)
        return " ".join(str(context.get(name) or "").split())[: placeholder.max_length]

    text = _PLACEHOLDER.sub(value, template)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", text))
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def sample_context(
    placeholders: Mapping[str, Placeholder] = APPOINTMENT_PLACEHOLDERS, **values: str
) -> dict[str, str]:
    """Sample values for a preview; `values` (e.g. the business's real name) win."""
    return {name: placeholder.sample for name, placeholder in placeholders.items()} | values


@dataclass(frozen=True)
class Preview:
    """A template rendered with sample data: the text, how it is split and counted (through
    `segments.check_text`, the composer's count), and what is wrong with the template."""

    text: str
    split: SplitText | None  # None when the rendered text cannot be sent (empty)
    errors: tuple[str, ...]

    @property
    def count(self) -> int:
        return self.split.count if self.split is not None else 0


def preview(
    template: str,
    *,
    placeholders: Mapping[str, Placeholder] = APPOINTMENT_PLACEHOLDERS,
    limit: int = MAX_CHARACTERS,
    suffix: str = "",
    **sample_values: str,
) -> Preview:
    """The template rendered with sample data (`sample_values` override the samples), with
    `suffix` appended (a reminder's "Reply C to confirm"), and its part count."""
    cleaned = multi_line(template).strip()
    errors = validate(cleaned, placeholders=placeholders, limit=limit)
    text = render(cleaned, sample_context(placeholders, **sample_values), placeholders=placeholders)
    if text and suffix:
        text += suffix
    try:
        split = check_text(text)
    except ServiceError as error:
        return Preview(text, None, tuple(errors or [error.message]))
    return Preview(text, split, tuple(errors))
