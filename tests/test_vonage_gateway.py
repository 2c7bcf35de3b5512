"""The Vonage gateway against the sandbox: real SDK, real HTTP, no mocks.

Each SDK pitfall from VONAGE.md has its own test here, named after the behaviour it protects.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from flask import Flask

from app.vonage_gateway import (
    Gateway,
    NumberUnavailable,
    OutcomeUnknown,
    PermanentFailure,
    TemporaryFailure,
    Throttled,
    TollFreeVerificationRequest,
    VonageSettings,
    delivery_failure_reason,
    get_gateway,
)
from sandbox.signing import sign_params

REPO = Path(__file__).resolve().parent.parent
SYSTEM_NUMBER = "18885550000"
CLIENT_PHONE = "+15551234567"


def send(gateway: Gateway, client_ref: str = "part-1", **overrides: object):
    """Send one plain part from the system number to the client's phone."""
    arguments: dict[str, object] = {
        "sender": SYSTEM_NUMBER,
        "to": CLIENT_PHONE,
        "text": "Your booking is confirmed for Tuesday at 10:00.",
        "unicode": False,
        "client_ref": client_ref,
    }
    arguments.update(overrides)
    return gateway.send_part(**arguments)  # type: ignore[arg-type]


def verification_details(numbers: tuple[str, ...]) -> TollFreeVerificationRequest:
    return TollFreeVerificationRequest(
        business_name="Bright Smile Dental LLC",
        street="1 Main St",
        city="Springfield",
        state="IL",
        postal_code="62701",
        country="US",
        website="https://brightsmile.example",
        contact_first_name="Ada",
        contact_last_name="Jones",
        contact_email="ada@brightsmile.example",
        contact_phone="+15551230000",
        use_case="Appointments",
        use_case_summary="Appointment reminders and two-way conversations with patients.",
        sample_messages=("Reminder: your cleaning is tomorrow at 10am. Reply STOP to opt out.",),
        opt_in_workflow="Patients give their number and agree to texts when booking.",
        numbers=numbers,
    )


# -- sending and the round trip ----------------------------------------------------------------


def test_send_part_returns_vonage_message_id_price_and_network(gateway):
    sent = send(gateway)

    assert len(sent.message_id) == 16
    assert sent.price == "0.00790000"
    assert sent.network == "310260"
    assert sent.message_count == 1


def test_sent_part_receipt_arrives_signed_and_passes_the_gateway_check(
    sandbox, gateway, webhook_catcher
):
    sent = send(gateway, client_ref="part-42", callback_url=webhook_catcher.url_for("/status"))

    [receipt] = webhook_catcher.wait_for(1, "/status")
    params = receipt.params
    assert params["messageId"] == sent.message_id
    assert params["client-ref"] == "part-42"
    assert (params["status"], params["err-code"]) == ("delivered", "0")
    assert params["msisdn"] == CLIENT_PHONE.lstrip("+")
    assert params["to"] == SYSTEM_NUMBER
    assert gateway.check_webhook_signature(params)


def test_unicode_part_goes_out_as_unicode_type(sandbox, gateway):
    send(gateway, text="See you soon 😊", unicode=True)

    [message] = sandbox.snapshot()["messages"]
    assert message["type"] == "unicode"
    assert message["text"] == "See you soon 😊"


# -- webhook signatures ---------------------------------------------------------------------


def signed_receipt(method: str = "sha256", now: float | None = None, **extra: str) -> dict:
    params = {"messageId": "0A00000012345678", "status": "delivered", "err-code": "0", **extra}
    return sign_params(params, "sandbox-signature-secret", method, now=now)


def test_forged_signature_is_refused(gateway):
    params = signed_receipt()
    params["status"] = "failed"

    assert not gateway.check_webhook_signature(params)


def test_unsigned_webhook_is_refused(gateway):
    assert not gateway.check_webhook_signature({"messageId": "0A00000012345678"})


def test_webhook_signed_with_another_secret_is_refused(gateway):
    params = sign_params({"messageId": "0A00000012345678"}, "someone-elses-secret")

    assert not gateway.check_webhook_signature(params)


def test_stale_timestamp_is_refused(gateway):
    signed_at = time.time()
    params = signed_receipt(now=signed_at)

    assert not gateway.check_webhook_signature(params, now=signed_at + 301)


def test_timestamp_from_the_future_is_refused(gateway):
    signed_at = time.time()
    params = signed_receipt(now=signed_at)

    assert not gateway.check_webhook_signature(params, now=signed_at - 301)


def test_timestamp_within_max_age_is_accepted(gateway):
    signed_at = time.time()
    params = signed_receipt(now=signed_at)

    assert gateway.check_webhook_signature(params, now=signed_at + 299)


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512", "md5hash"])
def test_signature_made_by_the_sandbox_passes_for_each_vonage_method(vonage_settings, method):
    gateway = Gateway(dataclasses.replace(vonage_settings, signature_method=method))

    assert gateway.check_webhook_signature(signed_receipt(method))


def test_signature_made_with_a_different_method_is_refused(vonage_settings):
    gateway = Gateway(dataclasses.replace(vonage_settings, signature_method="sha512"))

    assert not gateway.check_webhook_signature(signed_receipt("sha256"))


def test_signature_covers_values_containing_ampersands_and_equals_signs(gateway):
    params = signed_receipt(text="Tom & Jerry: 2+2=4")

    assert gateway.check_webhook_signature(params)


# -- pitfall 1: https rewrite for the sandbox hosts only ------------------------------------


def test_plain_http_rewrite_applies_only_to_the_vonage_hosts(gateway, webhook_catcher):
    session = gateway._clients().form._session

    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://{webhook_catcher.host_port}/not-vonage", timeout=2)
    assert webhook_catcher.requests() == []


def test_without_plain_http_the_gateway_keeps_https(sandbox, vonage_settings):
    gateway = Gateway(dataclasses.replace(vonage_settings, plain_http=False))

    with pytest.raises(TemporaryFailure):
        send(gateway)
    gateway.close()
    assert sandbox.requests() == []


# -- pitfall 2: an explicit timeout -----------------------------------------------------------


def test_slow_answer_times_out_after_the_configured_timeout(sandbox, vonage_settings):
    gateway = Gateway(dataclasses.replace(vonage_settings, timeout=0.3))
    sandbox.set_faults(delay_seconds=1.0)

    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        send(gateway)
    gateway.close()
    assert time.monotonic() - started < 0.9


# -- pitfall 3: clients never shared between threads, form and JSON kept apart ----------------


def test_each_thread_gets_its_own_sdk_clients(gateway):
    seen = []

    def grab() -> None:
        clients = gateway._clients()
        seen.append((clients.form, clients.json))

    threads = [threading.Thread(target=grab) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    (form_a, json_a), (form_b, json_b) = seen
    assert form_a is not form_b
    assert json_a is not json_b
    assert form_a is not json_a


def test_form_send_after_a_json_call_still_goes_out_form_encoded(sandbox, gateway):
    gateway.submit_tollfree_verification(verification_details((SYSTEM_NUMBER,)))

    send(gateway)

    [sms_request] = sandbox.requests("/sms/json")
    assert sms_request["content_type"] == "application/x-www-form-urlencoded"
    assert sms_request["outcome"] == 200


def test_concurrent_sends_from_many_threads_all_succeed_with_their_own_client_ref(sandbox, gateway):
    errors: list[Exception] = []

    def send_some(worker: int) -> None:
        try:
            for n in range(4):
                send(gateway, client_ref=f"w{worker}-{n}")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=send_some, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    counts = sandbox.snapshot()["requests_by_client_ref"]
    assert counts == {f"w{w}-{n}": 1 for w in range(6) for n in range(4)}


# -- pitfall 4: no silent re-POST on a dropped connection -------------------------------------


def test_dropped_connection_raises_outcome_unknown_after_exactly_one_request(sandbox, gateway):
    sandbox.set_faults(drop_count=1)

    with pytest.raises(OutcomeUnknown):
        send(gateway, client_ref="part-dropped")

    assert sandbox.snapshot()["requests_by_client_ref"] == {"part-dropped": 1}
    assert len(sandbox.requests("/sms/json")) == 1


def test_dropped_buy_raises_outcome_unknown_after_exactly_one_request(sandbox, gateway):
    msisdn = gateway.search_numbers("US")[0].msisdn
    sandbox.set_faults(drop_count=1)

    with pytest.raises(OutcomeUnknown):
        gateway.buy_number("US", msisdn)
    assert len(sandbox.requests("/number/buy")) == 1


# -- pitfall 5: key + secret for sending, a separate Auth for signatures ----------------------


def test_sending_uses_basic_auth_even_with_a_signature_secret(sandbox, gateway):
    assert gateway.settings.signature_secret

    send(gateway)

    [sms_request] = sandbox.requests("/sms/json")
    assert sms_request["auth"] == "basic"
    assert "sig" not in sms_request["params"]
    assert "api_secret" not in sms_request["params"]


# -- pitfall 6: errors mapped to our own hierarchy ------------------------------------------


def test_throttled_status_maps_to_throttled(sandbox, gateway):
    sandbox.set_faults(throttle_per_second=1)
    send(gateway, client_ref="first")

    with pytest.raises(Throttled):
        send(gateway, client_ref="second")
    assert sandbox.requests("/sms/json")[-1]["outcome"] == 200  # like Vonage: HTTP 200


def test_http_429_maps_to_throttled(sandbox, gateway):
    sandbox.set_faults(http_error_count=1, http_error_status=429)

    with pytest.raises(Throttled):
        send(gateway)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_maps_to_temporary_failure(sandbox, gateway, status):
    sandbox.set_faults(http_error_count=1, http_error_status=status)

    with pytest.raises(TemporaryFailure):
        send(gateway)


def test_connection_refused_maps_to_temporary_failure(vonage_settings):
    with socket_closed_port() as port:
        settings = dataclasses.replace(
            vonage_settings, rest_host=f"127.0.0.1:{port}", api_host=f"127.0.0.1:{port}"
        )
    gateway = Gateway(settings)

    with pytest.raises(TemporaryFailure):
        send(gateway)
    gateway.close()


class socket_closed_port:
    """A port that was free a moment ago, so nothing listens on it."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return self._socket.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def test_bad_credentials_map_to_permanent_failure_with_plain_reason(vonage_settings):
    gateway = Gateway(dataclasses.replace(vonage_settings, api_secret="wrong-secret"))

    with pytest.raises(PermanentFailure) as raised:
        send(gateway)
    gateway.close()
    assert raised.value.code == "4"
    assert raised.value.reason == "Vonage refused our account credentials."


def test_sender_we_do_not_own_maps_to_permanent_failure_15(gateway):
    with pytest.raises(PermanentFailure) as raised:
        send(gateway, sender="18005550199")

    assert raised.value.code == "15"
    assert "not one of our numbers" in raised.value.reason


def test_barred_recipient_maps_to_permanent_failure_7(sandbox, gateway):
    sandbox.set_faults(reject_count=1, reject_status="7")

    with pytest.raises(PermanentFailure) as raised:
        send(gateway)
    assert raised.value.code == "7"
    assert raised.value.reason == "The recipient's number is barred from receiving texts."


def test_out_of_credit_maps_to_permanent_failure_9(sandbox, gateway):
    sandbox.configure(balance="0")

    with pytest.raises(PermanentFailure) as raised:
        send(gateway)
    assert (raised.value.code, raised.value.reason) == ("9", "Our Vonage account is out of credit.")


def test_invalid_recipient_maps_to_permanent_failure_3(gateway):
    with pytest.raises(PermanentFailure) as raised:
        send(gateway, to="12")

    assert raised.value.code == "3"


def test_callback_url_the_sdk_refuses_maps_to_permanent_failure_before_sending(sandbox, gateway):
    with pytest.raises(PermanentFailure) as raised:
        send(gateway, callback_url="https://example.com/" + "x" * 100)

    assert raised.value.code == "invalid-request"
    assert sandbox.requests() == []


def test_internal_error_status_5_maps_to_temporary_failure(sandbox, gateway):
    sandbox.set_faults(reject_count=1, reject_status="5")

    with pytest.raises(TemporaryFailure):
        send(gateway)


def test_delivery_error_codes_have_plain_reasons():
    assert delivery_failure_reason("6") == "The carrier rejected the text as spam."
    assert "error 99" in delivery_failure_reason("99")


# -- pitfall 7: the vonage logger stays at INFO ---------------------------------------------


def test_vonage_logger_stays_quiet_when_root_logs_debug(caplog, gateway):
    caplog.set_level(logging.DEBUG)

    send(gateway)

    sdk_debug = [r for r in caplog.records if r.name.startswith("vonage") and r.levelno < 20]
    assert sdk_debug == []
    basic = base64.b64encode(b"sandbox-key:sandbox-secret").decode()
    assert "sandbox-secret" not in caplog.text
    assert basic not in caplog.text


# -- pitfall 8: no umbrella import ------------------------------------------------------------


def test_importing_the_gateway_does_not_import_the_umbrella_vonage_package():
    code = "import sys, app.vonage_gateway; print('vonage' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


# -- numbers ----------------------------------------------------------------------------------


def test_search_finds_toll_free_sms_numbers_for_sale(gateway):
    numbers = gateway.search_numbers("US")

    assert numbers
    assert all(n.type == "landline-toll-free" and "SMS" in n.features for n in numbers)
    assert all(n.country == "US" for n in numbers)


def test_search_with_an_empty_supply_finds_nothing(sandbox, gateway):
    sandbox.state.available["CA"] = []

    assert gateway.search_numbers("CA") == []


def test_bought_number_is_listed_as_owned(gateway):
    msisdn = gateway.search_numbers("CA")[0].msisdn

    gateway.buy_number("CA", msisdn)

    owned = {n.msisdn: n for n in gateway.owned_numbers()}
    assert owned[msisdn].country == "CA"
    assert msisdn not in {n.msisdn for n in gateway.search_numbers("CA")}


def test_buying_a_taken_number_raises_number_unavailable(gateway):
    msisdn = gateway.search_numbers("US")[0].msisdn
    gateway.buy_number("US", msisdn)

    with pytest.raises(NumberUnavailable):
        gateway.buy_number("US", msisdn)


def test_update_points_the_number_at_an_inbound_url_that_answers_the_probe(
    gateway, webhook_catcher
):
    url = webhook_catcher.url_for("/webhooks/vonage/inbound")

    gateway.update_number("US", SYSTEM_NUMBER, inbound_url=url)

    owned = {n.msisdn: n for n in gateway.owned_numbers()}
    assert owned[SYSTEM_NUMBER].inbound_url == url
    [probe] = webhook_catcher.requests("/webhooks/vonage/inbound")
    assert probe.method == "GET"


def test_update_fails_when_the_inbound_url_does_not_answer(gateway, webhook_catcher):
    webhook_catcher.respond_with(404)

    with pytest.raises(PermanentFailure) as raised:
        gateway.update_number("US", SYSTEM_NUMBER, inbound_url=webhook_catcher.url_for("/nope"))
    assert raised.value.code == "http-420"
    assert {n.msisdn: n for n in gateway.owned_numbers()}[SYSTEM_NUMBER].inbound_url is None


def test_cancelled_number_is_no_longer_owned_and_is_for_sale_again(gateway):
    msisdn = gateway.search_numbers("US")[0].msisdn
    gateway.buy_number("US", msisdn)

    gateway.cancel_number("US", msisdn)

    assert msisdn not in {n.msisdn for n in gateway.owned_numbers()}
    assert msisdn in {n.msisdn for n in gateway.search_numbers("US")}


def test_owned_numbers_reads_every_page(sandbox, gateway):
    for msisdn in [n.msisdn for n in gateway.search_numbers("US")][:100]:
        gateway.buy_number("US", msisdn)

    assert len(gateway.owned_numbers()) == 102  # two system numbers + 100 bought


# -- toll-free verification ---------------------------------------------------------------------


def test_submitted_verification_is_pending(gateway):
    registration_id = gateway.submit_tollfree_verification(verification_details((SYSTEM_NUMBER,)))

    status = gateway.tollfree_verification_status(registration_id)
    assert (status.state, status.raw_status, status.reason) == ("pending", "CARRIER_REVIEW", None)


def test_approve_button_makes_the_verification_verified(sandbox, gateway):
    registration_id = gateway.submit_tollfree_verification(verification_details((SYSTEM_NUMBER,)))

    button = requests.post(
        f"{sandbox.url}/_sandbox/registrations/{registration_id}/approve",
        data={},
        allow_redirects=False,
        timeout=5,
    )

    assert button.status_code == 302
    status = gateway.tollfree_verification_status(registration_id)
    assert (status.state, status.raw_status) == ("verified", "REGISTERED")


def test_rejected_verification_carries_the_reason_and_resubmits_to_pending(sandbox, gateway):
    details = verification_details((SYSTEM_NUMBER,))
    registration_id = gateway.submit_tollfree_verification(details)
    requests.post(
        f"{sandbox.url}/_sandbox/registrations/{registration_id}/reject",
        data={"reason": "Opt-in workflow is not described"},
        timeout=5,
    )

    rejected = gateway.tollfree_verification_status(registration_id)
    gateway.resubmit_tollfree_verification(
        registration_id, dataclasses.replace(details, opt_in_workflow="Checkbox at booking.")
    )
    resubmitted = gateway.tollfree_verification_status(registration_id)

    assert (rejected.state, rejected.reason) == ("rejected", "Opt-in workflow is not described")
    assert (resubmitted.state, resubmitted.reason) == ("pending", None)
    details_now = sandbox.snapshot()["registrations"][0]["use_case"]
    assert details_now["opt_in_workflow"] == "Checkbox at booking."


def test_verification_is_approved_automatically_after_the_delay(sandbox, gateway):
    sandbox.configure(verification_delay=0.2)
    registration_id = gateway.submit_tollfree_verification(verification_details((SYSTEM_NUMBER,)))
    assert gateway.tollfree_verification_status(registration_id).state == "pending"

    time.sleep(0.25)

    assert gateway.tollfree_verification_status(registration_id).state == "verified"


def test_verification_of_a_number_we_do_not_own_is_a_permanent_failure(gateway):
    with pytest.raises(PermanentFailure) as raised:
        gateway.submit_tollfree_verification(verification_details(("18005550199",)))

    assert raised.value.code == "http-400"


def test_status_of_an_unknown_registration_is_a_permanent_failure(gateway):
    with pytest.raises(PermanentFailure) as raised:
        gateway.tollfree_verification_status("no-such-registration")

    assert raised.value.code == "http-404"


# -- settings and Flask integration ----------------------------------------------------------


def test_settings_are_read_from_flask_style_config():
    settings = VonageSettings.from_config(
        {
            "VONAGE_API_KEY": "key",
            "VONAGE_API_SECRET": "secret",
            "VONAGE_SIGNATURE_SECRET": "sig-secret",
            "VONAGE_SIGNATURE_METHOD": "SHA512",
            "VONAGE_REST_HOST": "127.0.0.1:5001",
            "VONAGE_API_HOST": "127.0.0.1:5001",
            "VONAGE_TIMEOUT": "2.5",
            "VONAGE_WEBHOOK_MAX_AGE": "60",
            "VONAGE_PLAIN_HTTP": "true",
        }
    )

    assert settings == VonageSettings(
        api_key="key",
        api_secret="secret",
        signature_secret="sig-secret",
        signature_method="sha512",
        rest_host="127.0.0.1:5001",
        api_host="127.0.0.1:5001",
        timeout=2.5,
        webhook_max_age=60,
        plain_http=True,
    )


def test_settings_without_credentials_are_refused():
    with pytest.raises(ValueError):
        VonageSettings.from_config({})


def test_get_gateway_gives_one_gateway_per_settings():
    app = Flask(__name__)
    app.config.update(VONAGE_API_KEY="key", VONAGE_API_SECRET="secret")
    other = Flask(__name__)
    other.config.update(VONAGE_API_KEY="key", VONAGE_API_SECRET="other-secret")

    with app.app_context():
        first, again = get_gateway(), get_gateway()
    with other.app_context():
        different = get_gateway()

    assert first is again
    assert different is not first
