"""Helpers for the web app's tests: ``fewshot serve`` as a real process, and headless Chromium from Debian.

:class:`Server` starts ``fewshot serve --port 0`` (a port of its own) and reads
the address it prints; :func:`chromium` starts the system's Chromium through
its chromedriver (Selenium), with a WAV file as the microphone, and skips the
test with the reason when no Chromium is installed (``scripts/setup.sh``
installs it). Nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Server:
    """``fewshot serve`` in a child process; :attr:`url` is the address it printed (with its token, if any)."""

    def __init__(self, *args, home, timeout_s: float = 120):
        self.args, self.home, self.timeout_s = [str(a) for a in args], home, timeout_s
        self.lines: list[str] = []

    def __enter__(self):
        env = {**os.environ, "FEWSHOT_HOME": str(self.home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fewshot.cli", "serve", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                if "fewshot is at " in line:
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        found.wait(self.timeout_s)
        at = [m for line in self.lines if (m := re.search(r"fewshot is at (\S+)", line))]
        if not at:
            self.__exit__()
            raise RuntimeError("fewshot serve did not start:\n" + "".join(self.lines))
        self.url = at[0].group(1)
        self.base = re.match(r"http://[^/]+", self.url).group(0)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def log(self) -> str:
        return "".join(self.lines)


def chromium(*, microphone=None, size=(1000, 900)):
    """A headless Chromium (Selenium) whose microphone plays the WAV file ``microphone`` (in a loop)."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(
            f"no Chromium to drive ({CHROMIUM} and {CHROMEDRIVER}): apt-get install chromium "
            "chromium-driver (scripts/setup.sh does)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never downloads a browser or driver
    profile = tempfile.mkdtemp(prefix="fewshot-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(flag)
    if microphone is not None:
        opts.add_argument("--use-fake-ui-for-media-stream")
        opts.add_argument("--use-fake-device-for-media-stream")
        opts.add_argument(f"--use-file-for-fake-audio-capture={microphone}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.profile_dir = profile
    return driver


def close(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.profile_dir, ignore_errors=True)


def wait_for(predicate, *, timeout_s: float, what: str, every_s: float = 0.05):
    """Poll ``predicate()`` until it returns something true; that value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if value := predicate():
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
