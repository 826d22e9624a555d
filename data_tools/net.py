"""A polite HTTP client for catalogue pages and downloads.

Contract
--------
* every request carries a descriptive ``User-Agent``;
* requests to one host are spaced by at least ``request_interval`` seconds,
  and :meth:`PoliteClient.download_slot` lets one download at a time run per
  host (its :class:`~data_tools.gate.Gate` says whether in this process or
  across a whole cluster);
* HTTP 429 (honouring ``Retry-After``), 5xx, timeouts and dropped connections
  are retried with exponential backoff by :meth:`PoliteClient.with_retries`.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from .gate import Gate, local_gate

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "fewshot-data-tools/0.1 (speaker corpus builder for LibriVox public-domain "
    "recordings; one request per second, one download at a time)"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class HttpError(Exception):
    """A request failed for good.

    Parameters
    ----------
    url : str
        The requested address.
    message : str
        What went wrong.
    status : int or None
        HTTP status when the server answered, else ``None``.
    """

    def __init__(self, url: str, message: str, status: int | None = None):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message
        self.status = status

    def __reduce__(self):  # keeps the error whole when it crosses processes
        return type(self), (self.url, self.message, self.status)


class TransientError(Exception):
    """A failure worth retrying (raised by download attempts, for example).

    Parameters
    ----------
    message : str
        What went wrong.
    retry_after : float or None
        Seconds the server asked to wait, if any.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Response:
    """A finished HTTP response with its whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class RetryPolicy:
    """How often and how long to retry.

    Attributes
    ----------
    max_attempts : int
        Attempts in all, the first one included.
    backoff_s : float
        Wait before the second attempt; doubled for each further one.
    max_backoff_s : float
        Upper bound of one backoff wait.
    max_retry_after_s : float
        Upper bound on a server's ``Retry-After``.
    """

    max_attempts: int = 6
    backoff_s: float = 2.0
    max_backoff_s: float = 120.0
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        wait = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date) into seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(exc: BaseException) -> TransientError | None:
    """Return a :class:`TransientError` when ``exc`` is worth retrying, else ``None``."""
    if isinstance(exc, TransientError):
        return exc
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in RETRY_STATUSES:
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            return TransientError(f"HTTP {exc.code}", retry_after)
        return None
    if isinstance(
        exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException)
    ):
        return TransientError(f"{type(exc).__name__}: {exc}")
    return None


class PoliteClient:
    """HTTP client with a per-host rate limit and retries.

    Parameters
    ----------
    user_agent : str
        ``User-Agent`` header sent with every request.
    request_interval : float
        Minimum seconds between two requests to the same host.
    timeout : float
        Socket timeout in seconds.
    retry : RetryPolicy, optional
        Retry settings; defaults to :class:`RetryPolicy()`.
    sleep : callable, optional
        Sleep function, replaceable for tests.
    gate : Gate, optional
        Where turns and download slots are booked; defaults to one for this process only.
    """

    def __init__(
        self,
        user_agent: str = DEFAULT_USER_AGENT,
        request_interval: float = 1.0,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        gate: Gate | None = None,
    ):
        self.user_agent = user_agent
        self.request_interval = float(request_interval)
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.gate = gate if gate is not None else local_gate(sleep=sleep)

    def download_slot(self, url: str) -> AbstractContextManager:
        """Context in which one download from the host of ``url`` may run."""
        return self.gate.slot(url)

    def wait_turn(self, url: str) -> None:
        """Sleep until the host of ``url`` may be asked again, and book the slot."""
        self.gate.wait_turn(url, self.request_interval)

    def open(self, url: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """Open ``url`` once (no retries), waiting for the host's turn first.

        Raises
        ------
        urllib.error.HTTPError
            For answers with status 400 or above.
        """
        self.wait_turn(url)
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent, **(headers or {})})
        return urllib.request.urlopen(request, timeout=self.timeout)

    def with_retries(self, url: str, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it succeeds, retrying transient failures.

        Parameters
        ----------
        url : str
            Address used in messages.
        attempt : callable
            Makes one attempt; transient failures are recognised by :func:`classify`.

        Returns
        -------
        Any
            What ``attempt`` returned.

        Raises
        ------
        HttpError
            When a failure is not transient or attempts run out.
        """
        for number in range(self.retry.max_attempts):
            try:
                return attempt()
            except Exception as exc:
                transient = classify(exc)
                if transient is None:
                    status = exc.code if isinstance(exc, urllib.error.HTTPError) else None
                    raise HttpError(url, str(exc), status) from exc
                if number + 1 >= self.retry.max_attempts:
                    raise HttpError(url, f"gave up after {number + 1} attempts: {transient}") from exc
                wait = self.retry.delay(number, transient.retry_after)
                logger.info("retrying %s in %.1f s after %s", url, wait, transient)
                self.sleep(wait)
        raise HttpError(url, "no attempts allowed")

    def get(self, url: str, accept: tuple[int, ...] = (200,)) -> Response:
        """GET ``url`` with retries and return the whole response.

        Parameters
        ----------
        url : str
            Address to fetch.
        accept : tuple of int
            Statuses returned to the caller instead of raising (e.g. 404).

        Returns
        -------
        Response
            Status, headers and body.
        """

        def attempt() -> Response:
            try:
                with self.open(url) as resp:
                    return Response(resp.status, dict(resp.headers.items()), resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code in accept:
                    return Response(exc.code, dict(exc.headers.items()), exc.read())
                raise

        response = self.with_retries(url, attempt)
        if response.status not in accept:
            raise HttpError(url, f"unexpected HTTP {response.status}", response.status)
        return response
