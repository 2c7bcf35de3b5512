"""`python -m app.demo`: the app on its embedded defaults, in one process.

SQLite file, the in-process Redis stand-in and worker, the Vonage sandbox (with its phone
simulator) and a demo business. Nothing to install beyond the Python packages.
"""

from __future__ import annotations

import argparse
import os

DEMO_DEFAULTS = {
    "SANDBOX": "1",
    "VONAGE_PLAIN_HTTP": "1",
    "VONAGE_API_KEY": "sandbox-key",
    "VONAGE_API_SECRET": "sandbox-secret",
    "VONAGE_SIGNATURE_SECRET": "sandbox-signature-secret",
    "VONAGE_SIGNATURE_METHOD": "sha256",
    # The sandbox decides a verification a minute after it is submitted; check every 10 s so
    # the demo's number turns verified on its own, soon after.
    "VERIFICATION_POLL_SECONDS": "10",
}
DEMO_VERIFICATION_DELAY_SECONDS = 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--sandbox-port", type=int, default=5001)
    args = parser.parse_args(argv)

    sandbox_host = f"{args.host}:{args.sandbox_port}"
    for name, value in {
        **DEMO_DEFAULTS,
        "VONAGE_REST_HOST": sandbox_host,
        "VONAGE_API_HOST": sandbox_host,
        "PUBLIC_URL": f"http://{args.host}:{args.port}",
    }.items():
        os.environ.setdefault(name, value)
    if os.environ.get("REDIS_URL"):
        raise SystemExit("The demo runs on its in-process Redis stand-in: unset REDIS_URL.")

    from flask_migrate import upgrade

    from app import create_app, dev_server
    from app.cli import DEMO_EMAIL, DEMO_PASSWORD, seed_demo_business
    from app.inprocess_worker import start_inprocess_worker
    from app.services import texting
    from sandbox.server import start_sandbox

    app = create_app()
    if not app.config.get("VAPID_PRIVATE_KEY"):
        # Push notifications work in the demo with a key made once and kept in instance/.
        from app.services.push import development_private_key

        app.config["VAPID_PRIVATE_KEY"] = development_private_key(app.instance_path)
    with app.app_context():
        upgrade()
        seed_demo_business()
        system_numbers = texting.system_numbers()
        # Vonage probes a number's inbound URL before accepting it; until this app serves
        # that webhook, the sandbox is told not to.
        serves_inbound = any(
            rule.rule == texting.INBOUND_WEBHOOK_PATH for rule in app.url_map.iter_rules()
        )

    public_url = app.config["PUBLIC_URL"]
    sandbox = start_sandbox(
        host=args.host,
        port=args.sandbox_port,
        config={
            "api_key": app.config["VONAGE_API_KEY"],
            "api_secret": app.config["VONAGE_API_SECRET"],
            "signature_secret": app.config["VONAGE_SIGNATURE_SECRET"],
            "signature_method": app.config["VONAGE_SIGNATURE_METHOD"],
            "inbound_url": f"{public_url}/webhooks/vonage/inbound",
            "status_url": f"{public_url}/webhooks/vonage/status",
            "system_numbers": [
                system_numbers.transactional.lstrip("+"),
                system_numbers.marketing.lstrip("+"),
            ],
            "verification_delay": DEMO_VERIFICATION_DELAY_SECONDS,
            "probe_webhooks": serves_inbound,
        },
    )
    with app.app_context():
        texting.schedule_periodic_jobs()  # verification checks and the daily release
    start_inprocess_worker(app)

    print(
        "\n  Twoway is running.\n"
        f"  App:             {public_url}\n"
        f"  Sign in as:      {DEMO_EMAIL}  /  {DEMO_PASSWORD}\n"
        f"  Phone simulator: {sandbox.url}\n"
        f"  Captured email:  {public_url}/dev/mail\n"
        "  Stop with Ctrl+C.\n",
        flush=True,
    )
    dev_server.DevServer(args.host, args.port, app).serve_forever()  # until Ctrl+C


if __name__ == "__main__":
    main()
