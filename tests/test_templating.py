"""Template filters: how lists date their rows and what an avatar shows."""

from __future__ import annotations

from datetime import UTC, datetime

from app.templating import initial, short_datetime

# The anonymous locale is UTC (a signed-in page uses the business's zone).
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def test_a_row_from_today_shows_only_its_time(app):
    with app.test_request_context():
        assert short_datetime(datetime(2026, 11, 27, 9, 5, tzinfo=UTC), NOW) == "9:05 AM"


def test_a_row_from_yesterday_says_yesterday(app):
    with app.test_request_context():
        assert short_datetime(datetime(2026, 11, 26, 23, 59, tzinfo=UTC), NOW) == "Yesterday"


def test_a_row_from_this_year_shows_month_and_day_and_an_older_one_the_year(app):
    with app.test_request_context():
        assert short_datetime(datetime(2026, 3, 4, 12, 0, tzinfo=UTC), NOW) == "Mar 4"
        assert short_datetime(datetime(2025, 12, 31, 12, 0, tzinfo=UTC), NOW) == "Dec 31, 2025"


def test_an_avatar_shows_the_first_letter_and_a_hash_for_a_lead_named_after_its_number():
    assert initial("ada lovelace") == "A"
    assert initial("(202) 555-0143") == "#"
    assert initial("+44 20 7946 0958") == "#"
    assert initial("Émile") == "É"
