"""HTTP plumbing of the X connector: a session with timeouts and tweepy's errors translated."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter

from connectors.base import (
    ConnectorError,
    CredentialsRevoked,
    RateLimited,
    ReplyRefused,
    TransientError,
)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
RATE_LIMIT_FALLBACK = timedelta(minutes=15)  # X's rate-limit window, when no reset is given
_UNREACHABLE = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.JSONDecodeError,  # a truncated body
)


class TimeoutAdapter(HTTPAdapter):
    """Give every request a timeout: tweepy's Client has no timeout option."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send with our timeout unless the caller chose one."""
        chosen = self._timeout if timeout is None else timeout
        return super().send(request, stream, chosen, verify, cert, proxies)


X_HOST = "https://api.twitter.com"  # tweepy's fixed host: no option changes it


class RedirectAdapter(TimeoutAdapter):
    """Send tweepy's calls to another base URL: an egress proxy, or a local test double."""

    def __init__(self, timeout: tuple[float, float], base: str) -> None:
        super().__init__(timeout)
        self._base = base.rstrip("/")

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """Rewrite the host, then send with the timeout."""
        assert request.url is not None
        request.url = self._base + request.url[len(X_HOST) :]
        return super().send(request, stream, timeout, verify, cert, proxies)


def make_session(
    timeout: tuple[float, float] = DEFAULT_TIMEOUT, api_base: str | None = None
) -> requests.Session:
    """A requests session whose every call times out, optionally aimed at another base URL."""
    session = requests.Session()
    if api_base:
        if not api_base.startswith(("https://", "http://")):
            raise ConnectorError(f"X setting 'api_base' must be an http(s) URL: {api_base!r}")
        session.mount(X_HOST, RedirectAdapter(timeout, api_base))
    else:
        session.mount("https://", TimeoutAdapter(timeout))
    return session


def platform_message(err: tweepy.HTTPException) -> str:
    """What X said about a failed call (its errors[] or detail), or the HTTP status."""
    messages = [m for m in err.api_messages if isinstance(m, str) and m]
    return "; ".join(messages) or f"HTTP {err.response.status_code}"


def stale_token(err: ConnectorError, token: str | None) -> bool:
    """Whether a failed page call was X refusing a pagination token it no longer knows."""
    # Walking again from the newest page is safe (duplicates only), whereas keeping a dead
    # token would block the account for good.
    return token is not None and isinstance(err.__cause__, tweepy.BadRequest)


@contextmanager
def translated(
    action: str,
    *,
    sending: bool,
    secrets: Sequence[str],
    now: Callable[[], datetime],
) -> Iterator[None]:
    """Turn tweepy and requests exceptions into the connector error taxonomy."""

    def scrub(message: str) -> str:
        for secret in secrets:
            message = message.replace(secret, "***")
        return message

    try:
        yield
    except tweepy.TooManyRequests as err:
        reset = err.reset_time
        retry_at = (
            datetime.fromtimestamp(reset, UTC)
            if isinstance(reset, int)
            else now() + RATE_LIMIT_FALLBACK
        )
        raise RateLimited(
            f"X rate limit reached while {action}; retry after {retry_at:%Y-%m-%d %H:%M} UTC",
            retry_at=retry_at,
        ) from err
    except tweepy.Unauthorized as err:
        raise CredentialsRevoked(
            scrub(
                f"X rejected the account's credentials while {action} "
                f"({platform_message(err)}): an admin must reconnect the X account"
            )
        ) from err
    except tweepy.TwitterServerError as err:
        status = err.response.status_code
        raise TransientError(f"X failed while {action} (HTTP {status}); retry later") from err
    except (tweepy.Forbidden, tweepy.BadRequest, tweepy.NotFound) as err:
        message = scrub(platform_message(err))
        if sending:
            raise ReplyRefused(f"X refused the reply: {message}") from err
        raise ConnectorError(f"X refused {action}: {message}") from err
    except tweepy.HTTPException as err:
        raise ConnectorError(f"X failed while {action}: {scrub(platform_message(err))}") from err
    except _UNREACHABLE as err:
        raise TransientError(
            f"X could not be reached while {action} ({type(err).__name__}); retry later"
        ) from err
