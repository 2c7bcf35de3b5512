"""The Vonage sandbox itself: webhooks, the phone simulator, faults and controls."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.signing import check_signature, sign_params, signature
from sandbox.texts import is_gsm, split_parts

REPO = Path(__file__).resolve().parent.parent
SYSTEM_NUMBER = "18885550000"
HANDSET = "15551234567"
SECRET = "sandbox-signature-secret"


def sms(sandbox, **params: str) -> requests.Response:
    """POST /sms/json form-encoded with key and secret, as the oldest Vonage clients do."""
    body = {
        "api_key": "sandbox-key",
        "api_secret": "sandbox-secret",
        "from": SYSTEM_NUMBER,
        "to": HANDSET,
        "text": "Hello",
        **params,
    }
    return requests.post(f"{sandbox.url}/sms/json", data=body, timeout=5)


def by_part(parts):
    return sorted(parts, key=lambda r: int(r.params["concat-part"]))


# -- inbound texts from the simulated handsets ---------------------------------------------


def test_long_reply_arrives_as_signed_concatenated_parts(sandbox, gateway, webhook_catcher):
    sandbox.configure(inbound_url=webhook_catcher.url_for("/inbound"))
    text = "Could we move my appointment to Thursday afternoon? " * 4  # 208 GSM characters

    ids = sandbox.send_inbound(HANDSET, SYSTEM_NUMBER, text)

    parts = by_part(webhook_catcher.wait_for(2, "/inbound"))
    params = [p.params for p in parts]
    assert [p["concat-part"] for p in params] == ["1", "2"]
    assert {p["concat-total"] for p in params} == {"2"}
    assert len({p["concat-ref"] for p in params}) == 1
    assert {p["concat"] for p in params} == {"true"}
    assert [p["messageId"] for p in params] == ids
    assert len(set(ids)) == 2
    assert "".join(p["text"] for p in params) == text
    assert len(params[0]["text"]) == 153
    assert all(p["msisdn"] == HANDSET and p["to"] == SYSTEM_NUMBER for p in params)
    assert all(p["type"] == "text" for p in params)
    assert all(gateway.check_webhook_signature(p) for p in params)


def test_long_unicode_reply_is_split_in_67_character_parts(sandbox, webhook_catcher):
    sandbox.configure(inbound_url=webhook_catcher.url_for("/inbound"))
    text = "Thanks! 😊 " * 8  # 80 UTF-16 units: over the 70 of one unicode text

    sandbox.send_inbound(HANDSET, SYSTEM_NUMBER, text)

    parts = by_part(webhook_catcher.wait_for(2, "/inbound"))
    assert [p.params["type"] for p in parts] == ["unicode", "unicode"]
    assert "".join(p.params["text"] for p in parts) == text


def test_short_reply_has_keyword_and_no_concat_fields(sandbox, webhook_catcher):
    sandbox.configure(inbound_url=webhook_catcher.url_for("/inbound"))

    sandbox.send_inbound(HANDSET, SYSTEM_NUMBER, "stop please")

    [inbound] = webhook_catcher.wait_for(1, "/inbound")
    params = inbound.params
    assert params["keyword"] == "STOP"
    assert not {"concat", "concat-ref", "concat-total", "concat-part"} & set(params)
    assert {"api-key", "message-timestamp", "timestamp", "nonce", "sig"} <= set(params)


def test_reply_goes_to_the_numbers_own_inbound_url_before_the_default(
    sandbox, gateway, webhook_catcher
):
    sandbox.configure(inbound_url=webhook_catcher.url_for("/default"))
    gateway.update_number("US", SYSTEM_NUMBER, inbound_url=webhook_catcher.url_for("/own"))

    sandbox.send_inbound(HANDSET, SYSTEM_NUMBER, "Hi")

    probe, inbound = webhook_catcher.wait_for(2, "/own")
    assert (probe.method, inbound.method) == ("GET", "POST")
    assert inbound.params["text"] == "Hi"
    assert webhook_catcher.requests("/default") == []


def test_reply_form_on_the_phone_page_sends_the_inbound_webhook(sandbox, webhook_catcher):
    sandbox.configure(inbound_url=webhook_catcher.url_for("/inbound"))

    answer = requests.post(
        f"{sandbox.url}/_sandbox/inbound",
        data={"from": HANDSET, "to": SYSTEM_NUMBER, "text": "Yes, see you then"},
        allow_redirects=False,
        timeout=5,
    )

    assert answer.status_code == 302
    [inbound] = webhook_catcher.wait_for(1, "/inbound")
    assert inbound.params["text"] == "Yes, see you then"


def test_reply_to_a_number_the_account_does_not_own_is_refused(sandbox):
    answer = requests.post(
        f"{sandbox.url}/_sandbox/inbound",
        json={"from": HANDSET, "to": "18005550199", "text": "Hello?"},
        timeout=5,
    )

    assert answer.status_code == 400
    assert sandbox.snapshot()["inbound"] == []


def test_inbound_delivery_retried_until_the_webhook_answers_2xx(sandbox, webhook_catcher):
    sandbox.configure(inbound_url=webhook_catcher.url_for("/inbound"))
    webhook_catcher.respond_with(503, times=2)

    [message_id] = sandbox.send_inbound(HANDSET, SYSTEM_NUMBER, "Hi")

    attempts = webhook_catcher.wait_for(3, "/inbound")
    assert {a.params["messageId"] for a in attempts} == {message_id}
    assert wait_until(lambda: sandbox.snapshot()["inbound"][0]["delivered"])


# -- delivery receipts ----------------------------------------------------------------------


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_receipt_delivery_retried_until_the_callback_answers_2xx(sandbox, webhook_catcher):
    webhook_catcher.respond_with(500, times=3)

    sms(sandbox, callback=webhook_catcher.url_for("/status"))

    attempts = webhook_catcher.wait_for(4, "/status")
    assert len({a.params["messageId"] for a in attempts}) == 1
    assert all(check_signature(a.params, SECRET) for a in attempts)
    assert wait_until(lambda: sandbox.snapshot()["webhooks"][0]["delivered"])
    assert sandbox.snapshot()["webhooks"][0]["attempts"] == 4


def test_receipt_delivery_gives_up_after_the_maximum_attempts(sandbox, webhook_catcher):
    sandbox.configure(webhook_max_attempts=2)
    webhook_catcher.respond_with(500, times=5)

    sms(sandbox, callback=webhook_catcher.url_for("/status"))

    assert wait_until(lambda: sandbox.snapshot()["webhooks"][0]["gave_up"])
    assert len(webhook_catcher.requests("/status")) == 2


def test_callback_parameter_overrides_the_status_url(sandbox, webhook_catcher):
    sandbox.configure(status_url=webhook_catcher.url_for("/default-status"))

    sms(sandbox, callback=webhook_catcher.url_for("/callback"))
    sms(sandbox)

    assert len(webhook_catcher.wait_for(1, "/callback")) == 1
    assert len(webhook_catcher.wait_for(1, "/default-status")) == 1


def test_receipt_is_sent_after_the_receipt_delay(sandbox, webhook_catcher):
    sandbox.configure(receipt_delay=0.3, status_url=webhook_catcher.url_for("/status"))

    sms(sandbox)

    time.sleep(0.15)
    assert webhook_catcher.requests("/status") == []
    webhook_catcher.wait_for(1, "/status")


@pytest.mark.parametrize(
    ("webhook_method", "http_method", "body_kind"),
    [("GET", "GET", "query"), ("POST", "POST", "form"), ("POST-JSON", "POST", "json")],
)
def test_webhooks_use_the_configured_method(
    sandbox, webhook_catcher, webhook_method, http_method, body_kind
):
    sandbox.configure(webhook_method=webhook_method, status_url=webhook_catcher.url_for("/s"))

    sms(sandbox, **{"client-ref": "ref-7"})

    [receipt] = webhook_catcher.wait_for(1, "/s")
    assert (receipt.method, receipt.body_kind) == (http_method, body_kind)
    assert receipt.params["client-ref"] == "ref-7"
    assert check_signature(receipt.params, SECRET)


def test_receipt_has_every_field_vonage_sends(sandbox, webhook_catcher):
    sms(sandbox, callback=webhook_catcher.url_for("/s"), **{"client-ref": "ref-1"})

    [receipt] = webhook_catcher.wait_for(1, "/s")
    assert set(receipt.params) == {
        "msisdn",
        "to",
        "network-code",
        "messageId",
        "price",
        "status",
        "err-code",
        "scts",
        "client-ref",
        "message-timestamp",
        "api-key",
        "timestamp",
        "nonce",
        "sig",
    }


def test_failed_delivery_fault_sends_a_failed_receipt_with_the_err_code(sandbox, webhook_catcher):
    sandbox.set_faults(fail_delivery_count=1, fail_delivery_err_code="6")
    callback = webhook_catcher.url_for("/s")

    sms(sandbox, callback=callback, **{"client-ref": "first"})
    sms(sandbox, callback=callback, **{"client-ref": "second"})

    receipts = {r.params["client-ref"]: r.params for r in webhook_catcher.wait_for(2, "/s")}
    assert (receipts["first"]["status"], receipts["first"]["err-code"]) == ("failed", "6")
    assert (receipts["second"]["status"], receipts["second"]["err-code"]) == ("delivered", "0")


def test_failed_delivery_fault_for_one_recipient(sandbox, webhook_catcher):
    sandbox.set_faults(fail_delivery_to={"15550000001": "3"})
    callback = webhook_catcher.url_for("/s")

    sms(sandbox, callback=callback, to="15550000001")
    sms(sandbox, callback=callback, to="15550000002")

    receipts = {r.params["msisdn"]: r.params for r in webhook_catcher.wait_for(2, "/s")}
    assert receipts["15550000001"]["err-code"] == "3"
    assert receipts["15550000002"]["err-code"] == "0"


# -- the SMS API ------------------------------------------------------------------------------


def test_duplicate_sends_are_each_recorded_and_counted_per_client_ref(sandbox):
    for _ in range(3):
        sms(sandbox, **{"client-ref": "same"})
    sms(sandbox, **{"client-ref": "other"})

    state = sandbox.snapshot()
    assert state["requests_by_client_ref"] == {"same": 3, "other": 1}
    assert len(state["messages"]) == 4


def test_send_answer_has_vonages_shape(sandbox):
    answer = sms(sandbox, **{"client-ref": "ref-1"}).json()

    assert answer["message-count"] == "1"
    [message] = answer["messages"]
    assert set(message) == {
        "to",
        "message-id",
        "status",
        "remaining-balance",
        "message-price",
        "network",
        "client-ref",
    }
    assert (message["status"], message["client-ref"], message["to"]) == ("0", "ref-1", HANDSET)


def test_json_body_is_accepted_like_a_form(sandbox):
    answer = requests.post(
        f"{sandbox.url}/sms/json",
        json={
            "api_key": "sandbox-key",
            "api_secret": "sandbox-secret",
            "from": SYSTEM_NUMBER,
            "to": HANDSET,
            "text": "Hi",
        },
        timeout=5,
    )

    assert answer.json()["messages"][0]["status"] == "0"


def test_missing_parameter_answers_status_2(sandbox):
    answer = sms(sandbox, text="").json()

    assert answer["messages"][0] == {"status": "2", "error-text": "Missing text param"}


def test_text_too_long_for_one_part_is_split_by_the_sandbox_like_vonage(sandbox):
    answer = sms(sandbox, text="x" * 200).json()

    assert answer["message-count"] == "2"
    assert len({m["message-id"] for m in answer["messages"]}) == 2


def test_correctly_signed_request_is_accepted(sandbox):
    params = {"api_key": "sandbox-key", "from": SYSTEM_NUMBER, "to": HANDSET, "text": "Hi"}
    signed = sign_params(params, SECRET)

    answer = requests.post(f"{sandbox.url}/sms/json", data=signed, timeout=5).json()

    assert answer["messages"][0]["status"] == "0"


def test_wrongly_signed_request_answers_status_14(sandbox):
    params = {"api_key": "sandbox-key", "from": SYSTEM_NUMBER, "to": HANDSET, "text": "Hi"}
    signed = sign_params(params, "wrong-secret")

    answer = requests.post(f"{sandbox.url}/sms/json", data=signed, timeout=5).json()

    assert answer["messages"][0]["status"] == "14"


def test_throttle_fault_answers_status_1_with_http_200(sandbox):
    sandbox.set_faults(throttle_per_second=2)

    answers = [sms(sandbox) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["messages"][0]["status"] for a in answers] == ["0", "0", "1"]


def test_dropped_connection_closes_the_socket_without_an_answer(sandbox):
    sandbox.set_faults(drop_count=1)

    with pytest.raises(requests.ConnectionError):
        sms(sandbox)
    assert sms(sandbox).status_code == 200


def test_send_lost_to_a_dropped_connection_still_gets_a_receipt_with_its_client_ref(
    sandbox, webhook_catcher
):
    sandbox.set_faults(drop_count=1)

    with pytest.raises(requests.ConnectionError):
        sms(sandbox, callback=webhook_catcher.url_for("/s"), **{"client-ref": "lost"})

    [receipt] = webhook_catcher.wait_for(1, "/s")
    assert receipt.params["client-ref"] == "lost"


def test_drop_before_processing_sends_nothing(sandbox):
    sandbox.set_faults(drop_count=1, drop_after_processing=False)

    with pytest.raises(requests.ConnectionError):
        sms(sandbox)
    assert sandbox.snapshot()["messages"] == []


def test_faults_apply_only_to_the_given_paths(sandbox):
    sandbox.set_faults(http_error_count=1, paths=["/number/"])

    assert sms(sandbox).status_code == 200
    assert sandbox.snapshot()["faults"]["http_error_count"] == 1


# -- controls ---------------------------------------------------------------------------------


def test_faults_endpoint_sets_and_clears_faults(sandbox):
    set_answer = requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"drop_count": 2, "delay_seconds": 0.5}, timeout=5
    )
    cleared = requests.post(f"{sandbox.url}/_sandbox/faults", json={"clear": True}, timeout=5)

    assert (set_answer.json()["drop_count"], set_answer.json()["delay_seconds"]) == (2, 0.5)
    assert (cleared.json()["drop_count"], cleared.json()["delay_seconds"]) == (0, 0.0)


def test_fault_form_on_the_phone_page_sets_every_fault(sandbox):
    form = {
        "throttle_per_second": "30",
        "http_error_count": "2",
        "http_error_status": "503",
        "drop_count": "1",
        "drop_after_processing": "false",
        "delay_seconds": "0.5",
        "fail_delivery_count": "3",
        "fail_delivery_err_code": "6",
        "fail_delivery_to": "15550000001=3, +15550000002",
        "reject_count": "1",
        "reject_status": "9",
        "paths": "/sms/json",
    }

    answer = requests.post(
        f"{sandbox.url}/_sandbox/faults", data=form, allow_redirects=False, timeout=5
    )

    assert answer.status_code == 302
    assert sandbox.snapshot()["faults"] == {
        "throttle_per_second": 30,
        "http_error_count": 2,
        "http_error_status": 503,
        "drop_count": 1,
        "drop_after_processing": False,
        "delay_seconds": 0.5,
        "fail_delivery_count": 3,
        "fail_delivery_err_code": "6",
        "fail_delivery_to": {"15550000001": "3", "15550000002": "1"},
        "reject_count": 1,
        "reject_status": "9",
        "paths": ["/sms/json"],
    }


def test_settings_form_on_the_phone_page_clears_empty_urls(sandbox):
    sandbox.configure(inbound_url="http://127.0.0.1:9/inbound", verification_delay=5)

    requests.post(
        f"{sandbox.url}/_sandbox/settings",
        data={"inbound_url": "", "verification_delay": "", "webhook_method": "POST-JSON"},
        timeout=5,
    )

    settings = sandbox.snapshot()["settings"]
    assert (settings["inbound_url"], settings["verification_delay"]) == (None, None)
    assert settings["webhook_method"] == "POST-JSON"


def test_unknown_fault_is_refused_and_changes_nothing(sandbox):
    answer = requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"drop_count": 1, "explode": True}, timeout=5
    )

    assert answer.status_code == 400
    assert sandbox.snapshot()["faults"]["drop_count"] == 0


def test_settings_endpoint_changes_where_webhooks_go(sandbox, webhook_catcher):
    answer = requests.post(
        f"{sandbox.url}/_sandbox/settings",
        json={"status_url": webhook_catcher.url_for("/changed")},
        timeout=5,
    )

    assert answer.status_code == 200
    sms(sandbox)
    webhook_catcher.wait_for(1, "/changed")


def test_reset_forgets_texts_faults_and_bought_numbers(sandbox, gateway):
    sms(sandbox)
    msisdn = gateway.search_numbers("US")[0].msisdn
    gateway.buy_number("US", msisdn)
    sandbox.set_faults(drop_count=5)

    requests.post(f"{sandbox.url}/_sandbox/reset", json={}, timeout=5)

    state = sandbox.snapshot()
    assert state["messages"] == [] and state["requests"] == []
    assert state["faults"]["drop_count"] == 0
    assert msisdn not in {n["msisdn"] for n in state["numbers"]["owned"]}


def test_state_lists_numbers_registrations_and_faults(sandbox):
    state = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()

    assert {n["msisdn"] for n in state["numbers"]["owned"]} == {"18885550000", "18885550001"}
    assert state["numbers"]["available"] == {"US": 100, "CA": 50}
    assert state["registrations"] == []
    assert state["faults"]["drop_count"] == 0


def test_number_update_probe_can_be_switched_off(sandbox, gateway):
    sandbox.configure(probe_webhooks=False)

    gateway.update_number("US", SYSTEM_NUMBER, inbound_url="http://127.0.0.1:9/not-running")

    owned = {n.msisdn: n for n in gateway.owned_numbers()}
    assert owned[SYSTEM_NUMBER].inbound_url == "http://127.0.0.1:9/not-running"


def test_reject_button_needs_a_reason(sandbox, gateway):
    registration = sandbox.state.create_registration({"numbers": [SYSTEM_NUMBER]}, submit=True)

    answer = requests.post(
        f"{sandbox.url}/_sandbox/registrations/{registration['id']}/reject",
        json={"reason": ""},
        timeout=5,
    )

    assert answer.status_code == 400
    assert sandbox.snapshot()["registrations"][0]["status"] == "CARRIER_REVIEW"


def test_registered_verification_cannot_be_patched(sandbox):
    registration = sandbox.state.create_registration({"numbers": [SYSTEM_NUMBER]}, submit=True)
    sandbox.approve(registration["id"])

    answer = requests.patch(
        f"{sandbox.url}/tfn/v1/registrations/{registration['id']}",
        json={"use_case": {"summary": "changed"}},
        auth=("sandbox-key", "sandbox-secret"),
        timeout=5,
    )

    assert answer.status_code == 409


# -- the phone simulator page ---------------------------------------------------------------


def test_phone_page_lists_the_handset_and_what_it_received(sandbox, gateway):
    gateway.send_part(
        sender=SYSTEM_NUMBER, to=HANDSET, text="Café at 10? ☕", unicode=True, client_ref="p1"
    )

    page = requests.get(f"{sandbox.url}/", timeout=5)

    assert page.status_code == 200
    assert f'id="handset-{HANDSET}"' in page.text
    assert "Café at 10? ☕" in page.text
    assert f"from +{SYSTEM_NUMBER}" in page.text
    assert "unicode" in page.text


def test_phone_page_escapes_message_text(sandbox):
    sms(sandbox, text="<script>alert(1)</script>")

    page = requests.get(f"{sandbox.url}/phones", timeout=5)

    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_added_handset_appears_with_a_reply_form(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/handsets", data={"msisdn": "+1 555 000 1234"}, timeout=5)

    page = requests.get(f"{sandbox.url}/", timeout=5).text

    assert 'id="handset-15550001234"' in page
    assert 'name="from" value="15550001234"' in page


def test_a_new_handset_replies_to_a_bought_number_by_default_not_a_system_one(sandbox, gateway):
    """In the demo, the first reply a person types goes to the business's texting number
    (a reply to a shared system number reaches no inbox)."""
    msisdn = gateway.search_numbers("US")[0].msisdn
    gateway.buy_number("US", msisdn)
    requests.post(f"{sandbox.url}/_sandbox/handsets", data={"msisdn": "+1 555 000 1234"}, timeout=5)

    page = requests.get(f"{sandbox.url}/", timeout=5).text

    assert f'<option value="{msisdn}" selected>' in page
    assert f'<option value="{SYSTEM_NUMBER}" selected>' not in page


def test_phone_page_shows_the_verification_buttons(sandbox):
    registration = sandbox.state.create_registration(
        {"business": {"name": "Bright Smile"}, "numbers": [SYSTEM_NUMBER]}, submit=True
    )

    page = requests.get(f"{sandbox.url}/", timeout=5).text

    assert f"/_sandbox/registrations/{registration['id']}/approve" in page
    assert f"/_sandbox/registrations/{registration['id']}/reject" in page


# -- signing and texts ------------------------------------------------------------------------


def test_hmac_signature_follows_vonages_recipe():
    params = {"b": "x&y", "a": "1=2", "sig": "ignored"}

    expected = hmac.new(b"s", b"&a=1_2&b=x_y", hashlib.sha256).hexdigest()
    assert signature(params, "s", "sha256") == expected


def test_md5_hash_signature_appends_the_secret():
    params = {"b": "x&y", "a": "1=2"}

    assert signature(params, "s", "md5hash") == hashlib.md5(b"&a=1_2&b=x_ys").hexdigest()


def test_gsm_alphabet_includes_the_extension_table_but_not_smart_quotes():
    assert is_gsm("Hello {world} €5")
    assert not is_gsm("Smart “quotes”")


def test_text_up_to_160_gsm_characters_is_one_part():
    assert split_parts("x" * 160, unicode=False) == ["x" * 160]


def test_longer_gsm_text_splits_in_153_septet_parts():
    assert [len(p) for p in split_parts("x" * 161, unicode=False)] == [153, 8]


def test_extension_characters_count_twice_and_are_never_split():
    assert [len(p) for p in split_parts("€" * 81, unicode=False)] == [76, 5]


def test_emoji_is_never_split_across_unicode_parts():
    parts = split_parts("a" + "😊" * 40, unicode=True)

    assert "".join(parts) == "a" + "😊" * 40
    assert all(len(p.encode("utf-16-le")) // 2 <= 67 for p in parts)


# -- isolation ------------------------------------------------------------------------------


def test_sandbox_imports_neither_the_vonage_sdk_nor_the_app():
    code = (
        "import sys, sandbox, sandbox.server, sandbox.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'app' or m.startswith('vonage')]; "
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
