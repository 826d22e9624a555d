"""The per-host book behind the cluster-wide politeness: request spacing, download slots, lapsed leases."""

from __future__ import annotations

import pickle

from data_tools.gate import HostBook, host_of, local_gate


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_turns_are_spaced_per_host():
    clock = Clock()
    book = HostBook(clock=clock)
    assert [book.turn("a", 1.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert book.turn("b", 1.0) == 0.0
    clock.now += 5
    assert book.turn("a", 1.0) == 0.0


def test_slots_are_limited_per_host_and_lapse_without_renewal():
    clock = Clock()
    book = HostBook(slots=2, lease_s=20.0, clock=clock)
    first, second = book.acquire("a"), book.acquire("a")
    assert first and second and book.acquire("a") is None
    assert book.acquire("b") is not None
    book.release(first)
    third = book.acquire("a")
    assert third is not None and book.acquire("a") is None
    clock.now += 15
    assert book.renew(second)
    clock.now += 10  # the third's holder went quiet 25 s ago (a lost node): its slot is given again
    assert not book.renew(third)
    assert book.acquire("a") is not None and book.acquire("a") is None


def test_gate_slot_waits_for_the_holder():
    gate = local_gate(slots=1)
    url = "http://Example.org:80/download/x.mp3"
    assert host_of(url) == "example.org:80"
    with gate.slot(url):
        assert gate._call("acquire", host_of(url)) is None
    assert gate._call("acquire", host_of(url)) is not None
    assert pickle.loads(pickle.dumps(HostBook(3))).slots == 3
