"""The one template language (DESIGN.md §10): placeholders, validation, rendering, and a preview
counted by the one split function."""

from __future__ import annotations

import pytest

from app.services import message_templates as templates
from app.services.errors import ServiceError
from app.services.segments import MAX_CHARACTERS, check_text


def test_an_unknown_placeholder_is_refused_with_the_list_of_known_ones():
    errors = templates.validate("Hi {clinet_name}, see you {appointment_date}")
    assert len(errors) == 1
    assert "{clinet_name}" in errors[0]
    for name in templates.APPOINTMENT_PLACEHOLDERS:
        assert "{" + name + "}" in errors[0]


def test_a_placeholder_of_another_feature_is_unknown_there():
    errors = templates.validate(
        "See you {appointment_date}", placeholders=templates.CLIENT_PLACEHOLDERS
    )
    assert errors and "{appointment_date}" in errors[0]
    assert "{client_first_name}" in errors[0]


@pytest.mark.parametrize(
    "template", ["Hi {client_first_name", "Hi client_first_name}", "Hi {{client_first_name}"]
)
def test_unbalanced_braces_are_refused(template):
    errors = templates.validate(template)
    assert errors and any("without its" in error for error in errors)


def test_an_empty_template_is_refused():
    assert templates.validate("   \n ") == ["Write the message's text."]


def test_a_template_whose_worst_case_render_is_over_550_characters_is_refused():
    # 3 names (120 each) + a location (200) = 560 characters at their longest, though a
    # typical render is short.
    template = "{client_name}{business_name}{staff_name}{location}"
    assert len(templates.render(template, templates.sample_context())) < 160
    assert templates.worst_case_length(template) == 560
    errors = templates.validate(template)
    assert errors and "560 characters" in errors[0] and str(MAX_CHARACTERS) in errors[0]


def test_a_template_at_exactly_the_limit_in_the_worst_case_is_accepted():
    template = "{location}" + "x" * (MAX_CHARACTERS - 200)
    assert templates.worst_case_length(template) == MAX_CHARACTERS
    assert templates.validate(template) == []


def test_the_worst_case_counts_the_suffix_a_feature_keeps_room_for():
    template = "{location}" + "x" * (MAX_CHARACTERS - 200)
    assert templates.validate(template, limit=MAX_CHARACTERS - 20) != []


def test_render_cuts_each_value_to_its_maximum_so_a_valid_template_always_fits():
    template = "{client_name} {location}"
    assert templates.validate(template) == []
    text = templates.render(template, {"client_name": "N" * 500, "location": "L" * 500})
    assert len(text) == 120 + 1 + 200
    check_text(text)  # accepted by the pipeline


def test_render_fills_placeholders_and_closes_the_gap_an_empty_value_leaves():
    text = templates.render(
        "Hi {client_first_name}, see {staff_name} at {appointment_time}.",
        {"client_first_name": "Sam", "staff_name": None, "appointment_time": "3:30 PM"},
    )
    assert text == "Hi Sam, see at 3:30 PM."


def test_check_refuses_with_a_service_error_and_returns_the_cleaned_text():
    assert templates.check("  Hi {client_first_name}\r\n") == "Hi {client_first_name}"
    with pytest.raises(ServiceError):
        templates.check("Hi {nobody}")


@pytest.mark.parametrize(
    "template",
    [
        "Hi {client_first_name}, see you {appointment_date} at {appointment_time}.",
        "Hi {client_first_name} 😀 " + "see you soon " * 8,
        "{business_name}: " + "a long reminder text " * 12,
    ],
)
def test_the_preview_part_count_is_the_split_functions_count(template):
    preview = templates.preview(template)
    assert preview.errors == ()
    expected = check_text(templates.render(template, templates.sample_context()))
    assert preview.count == expected.count
    assert preview.split.summary == expected.summary


def test_the_preview_uses_the_given_values_and_suffix():
    preview = templates.preview(
        "{business_name} says hi", suffix=" Reply C to confirm.", business_name="Acme"
    )
    assert preview.text == "Acme says hi Reply C to confirm."


def test_the_preview_of_an_invalid_template_says_what_is_wrong():
    preview = templates.preview("Hi {nobody}")
    assert preview.errors and "{nobody}" in preview.errors[0]
