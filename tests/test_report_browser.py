"""The HTML report in a real headless browser (Debian's Chromium): it loads with no console errors, every
figure decodes to a non-empty image, and a full-page screenshot is kept as a test artifact.

The browser is driven over the Chrome DevTools protocol on a pipe (`--remote-debugging-pipe`), so the
test needs no Python package beyond the standard library.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found (CI installs it: apt-get install -y chromium, see .ci/run)"
)


class Browser:
    """A headless Chromium spoken to over the DevTools protocol on a pipe (fds 3 and 4 of the child)."""

    def __init__(self, profile: Path, timeout: float = 60.0):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Chromium reads commands on its fd 3 and writes replies on fd 4. Bash wires them: a
        # preexec_fn would make subprocess fork the multithreaded JAX process, and dash takes
        # one-digit fds only. Our ends move above 10 so the redirections cannot clobber them.
        r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        for fd in (to_child_r, from_child_w):
            os.close(fd)
        self.proc = subprocess.Popen(
            [
                shutil.which("bash") or "/bin/bash",
                "-c",
                f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-',
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--window-size=1200,900",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(r, w),
        )
        os.close(r)
        os.close(w)
        self.timeout = timeout
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                self.events.remove(event)
                return event
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen since the last `open`."""
        self.call("Runtime.evaluate", session=True, expression="0")  # flush events that arrived before now
        out = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif event.get("method") == "Runtime.exceptionThrown":
                out.append(params["exceptionDetails"].get("text", "exception"))
            elif event.get("method") == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(params["entry"].get("text", "error"))
        return out

    def screenshot(self) -> bytes:
        metrics = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": metrics["width"], "height": metrics["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True, clip=clip)
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


IMAGES = (
    "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_the_harness_sees_broken_images_and_console_errors(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="broken" src="data:image/png;base64,AAAA">'
        "<script>console.error('boom')</script></body></html>"
    )
    browser.open(page.as_uri())
    assert any("boom" in e for e in browser.errors())
    assert browser.evaluate(IMAGES)[0]["w"] == 0


def test_report_renders_in_chromium(browser, example_report, tmp_path):
    browser.open(example_report.as_uri())
    assert browser.errors() == []
    images = browser.evaluate(IMAGES)
    assert len(images) == 7
    for image in images:
        assert image["complete"] and image["w"] > 300 and image["h"] > 200, image
    # Nothing runs off the side of a 1200-pixel window (wide tables scroll inside their box).
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    sections = browser.evaluate("Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)")
    assert sections[:3] == ["Data", "Parameters", "Fit"] and sections[-1] == "Reproduce"
    # Nothing but the file itself was requested: no network, no other file.
    resources = browser.evaluate("performance.getEntriesByType('resource').map(r => r.name)")
    assert resources == []

    shot = browser.screenshot()
    assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 50_000
    (tmp_path / "report.png").write_bytes(shot)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report_screenshot.png").write_bytes(shot)
