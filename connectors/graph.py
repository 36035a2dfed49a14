"""Graph API plumbing shared by the Facebook and Instagram connectors (page access token)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from connectors.base import (
    ConnectorError,
    CredentialsRevoked,
    NotOfficialAccount,
    PayloadError,
    RateLimited,
    ReplyRefused,
    TransientError,
)

with warnings.catch_warnings():
    # facebook-sdk 3.1.0 compiles a non-raw regex ("^\d\.\d{1,2}$"): without a cached .pyc
    # the invalid-escape warning turns into a SyntaxError under -W error (pytest's too).
    warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)
    warnings.filterwarnings("ignore", "invalid escape sequence", SyntaxWarning)
    import facebook

# The SDK only accepts versions up to 3.1 in its constructor, so the version is set afterwards.
GRAPH_VERSION = "v21.0"
REQUEST_TIMEOUT = 20.0
MAX_PAGES = 5
THROTTLE_BACKOFF = timedelta(minutes=15)

# 4 app, 17 user, 32 page, 613 custom; 80000-80014 are the Business Use Case limits.
_THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
_THROTTLE_SUBCODES = frozenset({2446079})
_REVOKED_CODES = frozenset({102, 190})
_TRANSIENT_CODES = frozenset({1, 2})
_PERMISSION_CODES = frozenset({10, *range(200, 300)})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Clock = Callable[[], datetime]
Json = dict[str, Any]


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


def parse_time(value: Any, label: str) -> datetime:
    """Parse a Graph timestamp ("2024-01-15T10:30:00+0000") or unix seconds/ms into aware UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Webhooks mix unix seconds (feed) and milliseconds (messaging).
        seconds = value / 1000 if value > 10**11 else value
        return EPOCH + timedelta(seconds=seconds)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    raise PayloadError(f"{label}: the timestamp is not a date with time zone: {value!r}")


def unix(moment: datetime) -> int:
    """Whole unix seconds of an aware datetime, as Graph's `since` wants them."""
    return int((moment - EPOCH).total_seconds())


def next_params(page: Mapping[str, Any]) -> dict[str, str] | None:
    """The query of a page's `paging.next` (minus the token), or None on the last page."""
    paging = page.get("paging")
    nxt = paging.get("next") if isinstance(paging, dict) else None
    if not isinstance(nxt, str) or not nxt:
        return None
    # Only the query is reused: the path stays ours, and the token never lands in a cursor.
    query = parse_qs(urlparse(nxt).query)
    return {k: v[-1] for k, v in query.items() if k != "access_token"}


def _retry_at(response: requests.Response | None, now: datetime) -> datetime:
    minutes = 0.0
    if response is not None:
        for header in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
            try:
                usage = json.loads(response.headers.get(header) or "null")
            except ValueError:
                continue
            # BUC usage is {business_id: [{..., "estimated_time_to_regain_access": min}]}.
            stack = [usage]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    wait = node.get("estimated_time_to_regain_access")
                    if isinstance(wait, int | float) and not isinstance(wait, bool):
                        minutes = max(minutes, float(wait))
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
    return now + (timedelta(minutes=minutes) if minutes > 0 else THROTTLE_BACKOFF)


class GraphClient:
    """A facebook-sdk GraphAPI with a pinned version that raises only connector errors."""

    def __init__(self, token: str, *, clock: Clock = utc_now) -> None:
        """Build the SDK client on our own session, so status and headers stay readable."""
        if not token:
            raise CredentialsRevoked("No page access token is stored; connect the page again")
        self._token = token
        self._clock = clock
        self._last: requests.Response | None = None
        self.session = requests.Session()
        self.session.hooks["response"].append(self._remember)
        self.api = facebook.GraphAPI(
            access_token=token, timeout=REQUEST_TIMEOUT, session=self.session
        )
        self.api.version = GRAPH_VERSION

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = response

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Json:
        """GET a Graph path (without version) and return its JSON object."""
        return self._call(path, dict(params or {}), None, sending=False)

    def post(self, path: str, data: Mapping[str, Any]) -> Json:
        """POST form fields to a Graph path; permission errors become ReplyRefused."""
        return self._call(path, {}, dict(data), sending=True)

    def _call(
        self, path: str, params: dict[str, Any], data: dict[str, Any] | None, *, sending: bool
    ) -> Json:
        self._last = None
        try:
            result = self.api.request(f"{self.api.version}/{path}", args=params, post_args=data)
        except facebook.GraphAPIError as err:
            raise self._map_graph_error(err, sending=sending) from None
        except (requests.ConnectionError, requests.Timeout) as err:
            # `from None`: requests' text names the URL, and the URL carries the token.
            raise TransientError(f"Graph API unreachable ({type(err).__name__})") from None
        except ValueError:
            raise TransientError("Graph API sent a truncated or invalid JSON body") from None
        except KeyError:
            raise TransientError("Graph API sent a response without a content type") from None
        except requests.RequestException as err:
            raise ConnectorError(f"Graph API request failed ({type(err).__name__})") from None
        status = self._last.status_code if self._last is not None else 200
        if status >= 500:
            raise TransientError(f"Graph API failed with HTTP {status}")
        if not isinstance(result, dict):
            raise TransientError("Graph API sent a JSON body that is not an object")
        return result

    def _map_graph_error(self, err: Any, *, sending: bool) -> ConnectorError:
        status = self._last.status_code if self._last is not None else None
        result: Json = err.result if isinstance(err.result, dict) else {}
        found = result.get("error")
        error: Json = found if isinstance(found, dict) else {}
        code, subcode = error.get("code"), error.get("error_subcode")
        message = self._scrub(str(error.get("message") or err.message or "unknown error"))
        where = f"Graph API error {code}" + (f"/{subcode}" if subcode else "")
        trace = f" (fbtrace_id {error['fbtrace_id']})" if error.get("fbtrace_id") else ""
        text = f"{where}: {message}{trace}"
        if code in _THROTTLE_CODES or subcode in _THROTTLE_SUBCODES or status == 429:
            retry_at = _retry_at(self._last, self._clock())
            return RateLimited(f"{text}; retry after {retry_at:%H:%M} UTC", retry_at=retry_at)
        if code in _REVOKED_CODES:
            return CredentialsRevoked(
                f"{text}; the page access token is expired or revoked, connect the page again"
            )
        if code in _TRANSIENT_CODES or error.get("is_transient") is True:
            return TransientError(text)
        if code in _PERMISSION_CODES:
            return ReplyRefused(text) if sending else ConnectorError(f"Missing permission: {text}")
        if not error:
            # No Graph error object: an HTML error page or another content type.
            if status is not None and status >= 500:
                return TransientError(f"Graph API failed with HTTP {status}")
            return ConnectorError(f"Graph API sent an unexpected response (HTTP {status})")
        if status is not None and status >= 500:
            return TransientError(text)
        return ConnectorError(text)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]")

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        resume: Mapping[str, Any] | None = None,
        done: Callable[[list[Any]], bool] | None = None,
    ) -> tuple[list[Any], dict[str, str] | None]:
        """Read up to MAX_PAGES pages (fewer once `done(rows)`); return rows and where to resume."""
        query: dict[str, Any] = dict(resume) if resume else dict(params)
        rows: list[Any] = []
        for _ in range(MAX_PAGES):
            page = self.get(path, query)
            data = page.get("data")
            if not isinstance(data, list):
                raise TransientError(f"Graph API answered {path} without a data list")
            rows.extend(data)
            nxt = next_params(page)
            if nxt is None or not data or (done is not None and done(data)):
                return rows, None
            query = nxt
        return rows, query


def verify_page(graph: GraphClient, page_id: str) -> Json:
    """`/me` of a token that must be the Page token of `page_id`, else NotOfficialAccount."""
    me = graph.get("me", {"fields": "id,name", "metadata": "1"})
    metadata = me.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("type") != "page":
        # A person's token: their name is none of the log's business.
        raise NotOfficialAccount(
            "This is a personal user token, not a Page token; connect with the "
            f"Page access token of page {page_id}"
        )
    if me.get("id") != page_id:
        raise NotOfficialAccount(
            f"This token belongs to another page ({me.get('name')}, id {me.get('id')}); "
            f"connect with the Page access token of page {page_id}"
        )
    return me
