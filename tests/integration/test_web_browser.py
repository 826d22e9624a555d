"""The web page in a real browser: headless Chromium from Debian, espeak-ng speech as its microphone.

Two people are enrolled through the page (one at the microphone, one from a
file), the live view names each as a conversation plays into the microphone,
and an uploaded conversation comes back as its turns. With
``FEWSHOT_SCREENSHOT=docs/web_listen.png`` the test saves the live view there.
"""

from __future__ import annotations

import os
import re
import statistics
import time

import numpy as np
import pytest

from synth import conversation, spoken, write_wav
from web_helpers import Server, chromium, close, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(home=tmp_path_factory.mktemp("web-home")) as s:
        yield s


def by_testid(driver, testid: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def element(driver, element_id: str):
    """The element of that id, once the page has drawn it."""
    from selenium.webdriver.common.by import By

    return wait_for(lambda: driver.find_elements(By.ID, element_id), timeout_s=10, what=f"#{element_id}")[0]


def members(driver) -> list[str]:
    """The names in the group page's table (read at once: the page redraws it)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('tbody tr')].map((r) => r.cells[0].textContent.trim())"
    )


def text_of(driver, testid: str) -> str:
    found = by_testid(driver, testid)
    return found[0].text if found else ""


def test_enroll_listen_and_a_recording_in_chromium(server, tmp_path):
    from selenium.webdriver.common.by import By

    ann_mic = write_wav(tmp_path / "ann-mic.wav", spoken("ann", 18))
    bob = write_wav(tmp_path / "bob.wav", spoken("bob", 20))
    talk, reference = conversation([("ann", 5, 1.0), ("bob", 5, 1.0), ("ann", 4, 1.5)], voices="espeak")
    talk = write_wav(tmp_path / "talk.wav", talk)

    t0 = time.monotonic()
    # enroll ann at the microphone, bob from a file
    driver = chromium(microphone=ann_mic)
    try:
        driver.get(f"{server.base}/groups/family/enroll")
        element(driver, "person").send_keys("ann")
        driver.execute_script("arguments[0].value = 15", element(driver, "seconds"))
        by_testid(driver, "record")[0].click()

        def counting():
            status = text_of(driver, "enroll-status")
            assert status.startswith("Recording ann"), status  # not an error
            m = re.fullmatch(r"speech (\d+\.\d) / 15 s", text_of(driver, "speech-seconds"))
            return m and float(m.group(1)) > 0

        wait_for(counting, timeout_s=10, what="the speech counter to move")
        done = wait_for(
            lambda: not (t := text_of(driver, "enroll-status")).startswith(("Recording", "Enrolling")) and t,
            timeout_s=60,
            what="the enrollment",
        )
        assert done.startswith("Enrolled ann in group family: "), done
        person = element(driver, "person")
        person.clear()
        person.send_keys("bob")
        by_testid(driver, "enroll-files")[0].send_keys(str(bob))
        by_testid(driver, "enroll-upload")[0].click()
        done = wait_for(
            lambda: (t := text_of(driver, "enroll-status")).startswith("Enrolled bob") and t,
            timeout_s=30,
            what="bob's enrollment",
        )
        driver.get(f"{server.base}/groups/family")
        assert wait_for(lambda: members(driver), timeout_s=10, what="the members") == ["ann", "bob"]
    finally:
        close(driver)

    t1 = time.monotonic()
    # listen: the conversation plays into the microphone (in a loop)
    driver = chromium(microphone=talk)
    try:
        driver.get(f"{server.base}/groups/family/listen")
        wait_for(lambda: by_testid(driver, "listen"), timeout_s=10, what="the listen button")[0].click()
        named = []

        def heard_both():
            who = by_testid(driver, "now-speaking")[0].get_attribute("data-speaker")
            if who and (not named or named[-1] != who):
                named.append(who)
            final = [li.get_attribute("data-speaker") for li in by_testid(driver, "turn")]
            return {"ann", "bob"} <= set(named) and final[:2] == ["ann", "bob"]

        wait_for(heard_both, timeout_s=45, what="the page to name ann and bob")
        assert named[:2] == ["ann", "bob"], named
        if path := os.environ.get("FEWSHOT_SCREENSHOT"):
            driver.save_screenshot(path)
        by_testid(driver, "listen")[0].click()  # stop
        latency = driver.execute_script("return window.fewshotLatency")
        firsts = [e["ms"] for i, e in enumerate(latency) if i == 0 or latency[i - 1]["speaker"] != e["speaker"]]
        print(
            f"\nlive: names shown {[e['speaker'] for e in latency]}; ms from the start of each turn's speech to "
            f"its first name on the page: {firsts} (median {statistics.median(firsts):.0f} ms)"
        )
        lag = driver.execute_script("return window.fewshotLag")
        print(
            f"live: ms from a block's capture to the server's answer on the page: median "
            f"{statistics.median(lag):.0f}, 95th percentile {np.percentile(lag, 95):.0f} ({len(lag)} blocks)"
        )
        assert 0 < statistics.median(firsts) < 4000, latency

        t2 = time.monotonic()
        # a recording: its turns in the table
        driver.get(f"{server.base}/groups/family/recording")
        wait_for(lambda: by_testid(driver, "recording-file"), timeout_s=10, what="the file input")[0].send_keys(
            str(talk)
        )
        by_testid(driver, "find-turns")[0].click()
        rows = wait_for(lambda: by_testid(driver, "recording-turn"), timeout_s=30, what="the recording's turns")
        turns = [(float(a), float(b), who) for a, b, who, _ in (r.text.split() for r in rows)]
        assert [who for *_, who in turns] == [who for *_, who in reference]
        assert np.allclose([t[:2] for t in turns], [r[:2] for r in reference], atol=0.3), turns
        assert "3 turns" in text_of(driver, "recording-status")
        # remove bob from the group's page (after a confirmation)
        driver.get(f"{server.base}/groups/family")
        wait_for(
            lambda: driver.find_elements(By.CSS_SELECTOR, '[aria-label="Remove bob"]'),
            timeout_s=10,
            what="bob's remove button",
        )[0].click()
        driver.switch_to.alert.accept()
        wait_for(lambda: members(driver) == ["ann"], timeout_s=10, what="bob to be removed")
        print(
            f"wall time: enrolling {t1 - t0:.1f} s, listening {t2 - t1:.1f} s, a recording "
            f"{time.monotonic() - t2:.1f} s"
        )
    finally:
        close(driver)
