"""Security headers on every response, and the session cookie's Secure flag."""

from __future__ import annotations

from flask import Flask, Response, request

# No inline script or style anywhere: JavaScript and CSS come from our static files only. The QR
# code of the second factor is inline SVG markup, which needs no exception.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    """Add the security headers to every response and settle the cookie's Secure flag."""
    if app.config.get("SESSION_COOKIE_SECURE") is None:
        # The demo and the tests run on plain http://127.0.0.1; everything else on HTTPS.
        app.config["SESSION_COOKIE_SECURE"] = not (
            app.config.get("DEMO") or app.config.get("TESTING")
        )
    # Logins are never remembered, but Flask-Login clears its cookie now and then: same flags.
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", app.config["SESSION_COOKIE_SAMESITE"])
    app.after_request(_add_headers)


def _add_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    if request.endpoint != "static":
        # Pages, JSON and error pages may carry customers' data: nothing stays in the browser's
        # cache on a shared or private device. Static files carry none and stay cacheable.
        headers["Cache-Control"] = "no-store"
        headers.pop("Expires", None)
    return response
