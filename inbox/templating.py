"""Template helpers shared by every page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, request

# Relative URLs built per process, up to this many; a page builds about 25 (navigation, forms,
# links), and the same ones request after request.
_MAX_BUILT = 10_000


def remembering_url_for(app: Flask) -> Callable[..., str]:
    """Flask's url_for for templates, remembering what it built: the same endpoint and
    arguments under the same script root always give the same relative URL. Calls it cannot
    key safely (blueprint-relative endpoints, _external, _anchor and the like, unhashable
    arguments) go straight to Flask."""
    plain = app.url_for
    built: dict[tuple[Any, ...], str] = {}

    def url_for(endpoint: str, /, **values: Any) -> str:
        if endpoint.startswith(".") or any(name.startswith("_") for name in values):
            return plain(endpoint, **values)
        key = (endpoint, request.script_root, *sorted(values.items()))
        try:
            found = built.get(key)
        except TypeError:  # a list or dict among the arguments
            return plain(endpoint, **values)
        if found is None:
            found = plain(endpoint, **values)
            if len(built) >= _MAX_BUILT:
                built.clear()
            built[key] = found
        return found

    return url_for


def init_app(app: Flask) -> None:
    """Install the template helpers."""
    app.jinja_env.globals["url_for"] = remembering_url_for(app)
