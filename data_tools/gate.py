"""Per-host politeness: request spacing and download slots, in one process or across a cluster.

Contract
--------
:class:`HostBook` keeps, per host, when the next request may start and which
leases hold its download slots (at most ``slots`` at once). A lease that is not
renewed for ``lease_s`` seconds lapses, so a node that dies while downloading
does not keep its slot. :class:`Gate` asks a book for turns and slots:
:func:`local_gate` keeps the book in this process; :func:`cluster_gate` keeps
it in one Ray actor on the driver's node, and every task of a run gets the
same gate, so the limits hold for the whole cluster, not per node.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Seconds between two polls of a busy download slot.
SLOT_POLL_S = 0.05
#: Seconds after which a download slot whose holder stopped renewing it is given to another.
LEASE_S = 20.0


def host_of(url: str) -> str:
    """The host (``netloc``, lower case) that politeness limits apply to."""
    return urllib.parse.urlsplit(url).netloc.lower()


class HostBook:
    """Request slots and download leases per host (plain state; see the module contract).

    Parameters
    ----------
    slots : int
        Downloads that may run at once from one host.
    lease_s : float or None
        Seconds a lease lives without renewal; ``None``: until released.
    clock : callable
        Monotonic clock in seconds.
    """

    def __init__(self, slots: int = 1, lease_s: float | None = LEASE_S, clock: Callable[[], float] = time.monotonic):
        self.slots = max(1, int(slots))
        self.lease_s = lease_s
        self.clock = clock
        self._next: dict[str, float] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    def turn(self, host: str, interval: float) -> float:
        """Book the next request to ``host``; return how many seconds the caller waits before it."""
        now = self.clock()
        start = max(now, self._next.get(host, 0.0))
        self._next[host] = start + interval
        return start - now

    def _drop_lapsed(self, now: float) -> None:
        if self.lease_s is not None:
            self._leases = {k: v for k, v in self._leases.items() if now - v[1] < self.lease_s}

    def acquire(self, host: str) -> str | None:
        """A lease on one of ``host``'s download slots, or ``None`` while all are held."""
        now = self.clock()
        self._drop_lapsed(now)
        if sum(1 for h, _ in self._leases.values() if h == host) >= self.slots:
            return None
        lease = uuid.uuid4().hex
        self._leases[lease] = (host, now)
        return lease

    def renew(self, lease: str) -> bool:
        """Keep ``lease`` alive; ``False`` when it had already lapsed."""
        now = self.clock()
        self._drop_lapsed(now)
        if lease not in self._leases:
            return False
        self._leases[lease] = (self._leases[lease][0], now)
        return True

    def release(self, lease: str) -> None:
        """Give the slot of ``lease`` back."""
        self._leases.pop(lease, None)


class Gate:
    """What a client asks before a request or a download: a turn, a slot.

    Parameters
    ----------
    call : callable
        ``call(method_name, *args)`` runs a :class:`HostBook` method and returns its result.
    lease_s : float or None
        The book's lease lifetime; slots held longer are renewed in the background.
    sleep : callable
        Sleep function.
    """

    def __init__(self, call: Callable, lease_s: float | None, sleep: Callable[[float], None] = time.sleep):
        self._call = call
        self.lease_s = lease_s
        self.sleep = sleep

    def wait_turn(self, url: str, interval: float) -> None:
        """Sleep until the host of ``url`` may be asked again (the slot is booked)."""
        delay = self._call("turn", host_of(url), float(interval))
        if delay > 0:
            self.sleep(delay)

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the download slots of the host of ``url`` for the block."""
        host = host_of(url)
        while (lease := self._call("acquire", host)) is None:
            time.sleep(SLOT_POLL_S)
        stop = threading.Event()
        keeper = None
        if self.lease_s is not None:

            def renew() -> None:
                while not stop.wait(self.lease_s / 4):
                    self._call("renew", lease)

            keeper = threading.Thread(target=renew, daemon=True)
            keeper.start()
        try:
            yield
        finally:
            stop.set()
            if keeper is not None:
                keeper.join()
            self._call("release", lease)


def local_gate(slots: int = 1, sleep: Callable[[float], None] = time.sleep) -> Gate:
    """A gate over a book in this process (threads share it)."""
    book, lock = HostBook(slots, lease_s=None), threading.Lock()

    def call(name, *args):
        with lock:
            return getattr(book, name)(*args)

    return Gate(call, None, sleep)


class _ActorCall:
    """``call(method_name, *args)`` on a :class:`HostBook` actor (picklable, so tasks can carry it)."""

    def __init__(self, handle):
        self.handle = handle

    def __call__(self, name, *args):
        import ray

        return ray.get(getattr(self.handle, name).remote(*args))


def cluster_gate(ray, slots: int = 1, lease_s: float = LEASE_S) -> Gate:
    """A gate over one :class:`HostBook` actor placed on this (the driver's) node.

    Parameters
    ----------
    ray : module
        The initialised ``ray`` module.
    slots : int
        Downloads at once per host, for the whole cluster.
    lease_s : float
        Seconds before a slot whose holder stopped renewing is given to another.

    Returns
    -------
    Gate
        A picklable gate: pass it to the run's tasks.
    """
    from fewshot.cluster import here

    actor = ray.remote(num_cpus=0)(HostBook).options(scheduling_strategy=here(ray)).remote(slots, lease_s)
    return Gate(_ActorCall(actor), lease_s)
