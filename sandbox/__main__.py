"""``python -m sandbox --port 5001``: run the Vonage sandbox in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from sandbox.server import start_sandbox


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--inbound-url", help="default inbound SMS webhook")
    parser.add_argument("--status-url", help="delivery receipt webhook")
    parser.add_argument("--webhook-method", choices=("GET", "POST", "POST-JSON"))
    parser.add_argument("--receipt-delay", type=float)
    parser.add_argument("--verification-delay", type=float, help="seconds; default: by button")
    parser.add_argument("--no-probe", action="store_true", help="accept any moHttpUrl")
    args = parser.parse_args(argv)

    config: dict[str, Any] = {}
    for name in (
        "inbound_url",
        "status_url",
        "webhook_method",
        "receipt_delay",
        "verification_delay",
    ):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    if args.no_probe:
        config["probe_webhooks"] = False

    server = start_sandbox(args.host, args.port, config, quiet=False)
    print(f"Vonage sandbox on {server.url} (phones: {server.url}/) - Ctrl-C to stop", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
