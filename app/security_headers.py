"""Security headers on every response (registered by `create_app`).

- `Content-Security-Policy` (`CONTENT_SECURITY_POLICY`), on every response, files included: a
  page runs only scripts and styles served from this site. No inline script, no inline
  `style=`, no `hx-on`, no eval: the base page turns htmx's `allowEval`, `allowScriptTags` and
  indicator styles off, and what would be inline lives in `static/app.js` and `static/app.css`
  (`tests/test_security_headers.py` guards the templates). `connect-src 'self'` covers the
  `/events` stream and the push control's `fetch`; the service worker (`/sw.js`) falls under
  `script-src`. Nobody may frame a page (`frame-ancestors 'none'`, clickjacking), forms post
  only here (`form-action 'self'`), and `<base>` and plugins are refused.
- `X-Content-Type-Options: nosniff` on every response, static files too: a browser never runs
  an upload or a text file as a script or a style.
- `Referrer-Policy: same-origin`: links out never carry a client's id in the referrer.
- `Cache-Control: no-store` on every response that is not a file (`/static/…`) and has not
  said how it is cached itself (`/sw.js`, and `/events` with `no-cache`): what a signed-in
  page shows (clients, texts) is never kept by the browser or a proxy for the next person at
  that computer. Pages of people who are not signed in get it too: each carries a CSRF token
  of its session.

The cookie flags (`Secure` whenever PUBLIC_URL is https) are settings: `app.config.cookie_flags`.
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def register(app: Flask) -> None:
    """Adds the headers to every response of `app`."""
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """The security headers of one response (see the module's rules)."""
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static" and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response
