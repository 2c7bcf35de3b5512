"""Every page works under the Content-Security-Policy, on a phone and on a desktop: the page
fixtures fail a test on anything the policy refused (tests/e2e/conftest.py), so walking every
page with htmx, the live-events stream and the service worker running shows that none of
them needs inline code or eval."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, Route, expect

from app.services import events
from tests.sending_helpers import make_client

pytestmark = pytest.mark.e2e

PUBLIC_PAGES = ["/sign-in", "/sign-up", "/password/forgot", "/dev/mail", "/no-such-page"]


def signed_in_pages(client_id: int) -> list[str]:
    """Every page a signed-in owner can open (the URL map's full pages)."""
    return [
        "/inbox",
        "/clients",
        "/clients?filter=leads",
        "/clients/new",
        "/clients/import",
        f"/clients/{client_id}",
        f"/clients/{client_id}?tab=details",
        f"/clients/{client_id}?tab=notes",
        f"/clients/{client_id}/edit",
        f"/clients/{client_id}/merge",
        "/actions",
        "/messages/new",
        "/notifications",
        "/settings",
        "/settings/business",
        "/settings/messages",
        "/settings/messages/sms",
        "/settings/team",
    ]


@pytest.fixture
def business(app, make_business):
    business = make_business("Bright Smile Dental")
    business["client"] = make_client(app, business["id"])
    return business


def walk_every_page(page: Page, client_id: int) -> None:
    for url in signed_in_pages(client_id):
        response = page.goto(url)
        assert response and response.status == 200, url
        expect(page.locator("h1").first).to_be_visible()
        # htmx ran, and the page's live-events stream is open.
        expect(page.locator("[sse-connect]")).to_have_count(1)
        assert page.evaluate("htmx.config.allowEval") is False  # (scripts ran: deferred)
    assert page.csp_violations == [], page.csp_violations  # type: ignore[attr-defined]


def search_swaps_the_client_list(page: Page) -> None:
    """An htmx swap under the policy: typing in the client search replaces the results."""
    page.goto("/clients")
    expect(page.locator("#client-results")).to_contain_text("Sam Client")
    page.get_by_role("searchbox").fill("nobody by this name")
    expect(page.locator("#client-results")).to_contain_text("No client matches")


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_every_signed_in_page_works_under_the_content_security_policy(
    request, business, live_server, sign_in, device
):
    page: Page = request.getfixturevalue(device)
    sign_in(page, business["owner"][1])
    walk_every_page(page, business["client"])
    search_swaps_the_client_list(page)


def test_pages_for_people_not_signed_in_work_under_the_policy(live_server, phone):
    for url in PUBLIC_PAGES:
        phone.goto(url)
        expect(phone.locator("h1").first).to_be_visible()
    assert phone.evaluate("htmx.config.allowEval") is False


def test_the_page_fixtures_catch_what_the_policy_refuses(live_server, desktop):
    desktop.goto("/sign-in")
    desktop.evaluate(
        """() => new Promise((resolve) => {
          let reports = 0;
          document.addEventListener("securitypolicyviolation", () => {
            if (++reports === 3) setTimeout(resolve);  // after the fixture's own listener
          });
          setTimeout(() => {  // later, outside DevTools' evaluation (which may eval)
            try { Function("return 1")(); } catch (refused) { /* EvalError, and a report */ }
          });
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
          document.body.insertAdjacentHTML("beforeend", '<p style="color: red">x</p>');
        })"""
    )
    assert desktop.evaluate("window.injected") is None  # (also lets the reports arrive)
    caught = list(desktop.csp_violations)  # type: ignore[attr-defined]
    desktop.csp_violations.clear()  # type: ignore[attr-defined]  (provoked on purpose)
    assert any("script-src" in report for report in caught), caught
    assert any("style-src" in report for report in caught), caught
    assert any("eval" in report for report in caught), caught


def test_a_live_fragment_of_a_card_refreshes_only_for_its_own_clients_events(
    app, business, live_server, desktop, sign_in
):
    other = make_client(app, business["id"], phone="+15557650000")
    mine = business["client"]
    sign_in(desktop, business["owner"][1])
    desktop.goto(f"/clients/{mine}?tab=conversation")
    expect(desktop.locator("#conversation-live")).to_be_visible()
    fragments = [f"/clients/{mine}/badges", f"/messages/clients/{mine}", f"/clients/{mine}/state"]
    card_fetches: list[str] = []

    def record_card_fetch(request: Request) -> None:
        if any(fragment in request.url for fragment in fragments):
            card_fetches.append(request.url)

    desktop.on("request", record_card_fetch)
    # The other client's events, then one every page refreshes for (the navigation's count):
    # events arrive in order, so once the count is fetched the others have been handled.
    with desktop.expect_request(lambda r: "/inbox/count" in r.url), app.app_context():
        events.publish(business["id"], "message.status", {"client_id": other})
        events.publish(business["id"], "message.created", {"client_id": other})
        events.publish(business["id"], "inbox.changed", {"client_id": other})
    assert card_fetches == []
    with desktop.expect_request(lambda r: f"/messages/clients/{mine}" in r.url), app.app_context():
        events.publish(business["id"], "message.status", {"client_id": mine})


def test_a_page_that_missed_events_no_longer_kept_reloads_itself(
    business, live_server, desktop, sign_in
):
    """The stream's `reset` (what the page missed is gone) reloads the page: app.js does it,
    where an inline handler did before the policy."""
    sign_in(desktop, business["owner"][1])
    resumed_from: list[str] = []

    def resume_the_client_list_from_a_forgotten_event(route: Route) -> None:
        if route.request.frame.url.endswith("/clients") and not resumed_from:
            resumed_from.append(route.request.url)  # the first stream of /clients only
            url = re.sub(
                r"last_event_id=[^&]*", "last_event_id=99999999999999-0", route.request.url
            )
            route.continue_(url=url)
        else:
            route.continue_()

    desktop.route("**/events?*", resume_the_client_list_from_a_forgotten_event)
    # The page's next stream after the rewritten one: the reloaded page's (or a reconnect).
    with desktop.expect_request(lambda request: "/events" in request.url and bool(resumed_from)):
        desktop.goto("/clients")
    assert desktop.evaluate("performance.getEntriesByType('navigation')[0].type") == "reload"
    assert len(resumed_from) == 1
    expect(desktop.get_by_role("heading", level=1, name="Clients")).to_be_visible()
