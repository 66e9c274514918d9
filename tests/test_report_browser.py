"""The HTML report in a real headless browser (Debian's Chromium), on a real sweep: at a 1,200-pixel screen and
at the width of an A4 page in print, nothing overflows, nothing logs an error, every figure is a non-empty
image, the Caveats section opens the report and lists the bound hit with its share of draws, and the printed
PDF has the same sections. Screenshots and the PDF are kept as test artifacts (tests/artifacts/).

The browser is driven over the Chrome DevTools protocol on a pipe (`--remote-debugging-pipe`), so the
test needs no Python package beyond the standard library.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_cases import STARTS, report_of

import scalejax as sj

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MISFITTING = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "misfitting" / "scaling_results_last_ckpt_only.csv"
)
# An A4 page's text column in CSS pixels: 210 mm less the report's 14 mm margins, at 96 pixels per inch.
A4_WIDTH = round((210 - 2 * 14) / 25.4 * 96)

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
# The share of each image's pixels that are not near-white: a blank or failed figure has none.
INK = """Array.from(document.images).map(img => {
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  if (!c.width || !c.height) return 0;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data; let ink = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) ink++;
  return ink / (c.width * c.height);
})"""
# Elements that reach past the page's right edge, tables wider than their box, figures wider than their section.
OVERFLOW = """(() => {
  const out = [];
  if (document.documentElement.scrollWidth > window.innerWidth) out.push('page ' + document.documentElement.scrollWidth);
  for (const d of document.querySelectorAll('div.table'))
    if (d.scrollWidth > d.clientWidth + 1) out.push('table ' + d.querySelector('caption').textContent + ' ' + d.scrollWidth + '>' + d.clientWidth);
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.right > window.innerWidth + 1) out.push(e.tagName + ' ' + (e.id || e.className) + ' right ' + r.right);
  }
  for (const i of document.images)
    if (i.getBoundingClientRect().width > i.parentElement.getBoundingClientRect().width + 1) out.push('figure ' + i.alt);
  return out;
})()"""
HEADINGS = "Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def view(browser: Browser, url: str, width: int, media: str) -> None:
    browser.call(
        "Emulation.setDeviceMetricsOverride", session=True, width=width, height=1000, deviceScaleFactor=1, mobile=False
    )
    browser.call("Emulation.setEmulatedMedia", session=True, media=media)
    browser.open(url)


def keep(name: str, data: bytes) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(data)


def check_page(browser: Browser, n_figures: int) -> None:
    """No console error, every figure a non-empty image, nothing overflowing, the Caveats section first."""
    assert browser.errors() == []
    images = browser.evaluate(IMAGES)
    assert len(images) == n_figures
    for image in images:
        assert image["complete"] and image["w"] > 300 and image["h"] > 150, image
    ink = browser.evaluate(INK)
    assert all(share > 0.02 for share in ink), list(zip([i["alt"] for i in images], ink, strict=True))
    assert browser.evaluate(OVERFLOW) == []
    assert browser.evaluate(HEADINGS)[:2] == ["Caveats", "Data"]
    assert browser.evaluate("performance.getEntriesByType('resource').map(r => r.name)") == []  # nothing fetched


def test_the_harness_sees_broken_and_blank_images_console_errors_and_overflow(browser, tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buf, format="PNG")
    blank = base64.b64encode(buf.getvalue()).decode("ascii")
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="broken" src="data:image/png;base64,AAAA">'
        f'<img alt="blank" src="data:image/png;base64,{blank}">'
        '<div class="table"><table><caption>wide</caption><tr><td style="white-space:nowrap">'
        + "x" * 400
        + "</td></tr></table></div><script>console.error('boom')</script></body></html>"
    )
    view(browser, page.as_uri(), 1200, "screen")
    assert any("boom" in e for e in browser.errors())
    assert browser.evaluate(IMAGES)[0]["w"] == 0
    assert browser.evaluate(INK)[1] == 0
    assert any(item.startswith("page") for item in browser.evaluate(OVERFLOW))


@pytest.fixture(scope="module")
def misfitting(tmp_path_factory):
    """The report of the misfitting sweep's 81 best-learning-rate runs, bootstrapped (a real, misfitting law)."""
    if not MISFITTING.is_file():
        pytest.skip(f"{MISFITTING} not found (../shared/data is absent)")
    raw = pd.read_csv(MISFITTING)
    best = raw.loc[raw.groupby(["model", "train_tokens"])["loss"].idxmin()].reset_index(drop=True)
    assert len(best) == 81
    boot = sj.bootstrap("chinchilla", best, x={"N": "N", "D": "D"}, y="loss", n=200, seed=0, starts=STARTS)
    out = tmp_path_factory.mktemp("misfitting") / "report.html"
    sj.write_report(
        boot,
        targets={"N": [7e9, 7e10], "D": [1.4e11, 1.4e12]},
        out=out,
        source="misfitting/scaling_results_last_ckpt_only.csv (best learning rate per size and tokens)",
    )
    return out, boot


def test_the_report_of_a_real_sweep_renders_on_a_screen_and_on_a4(browser, misfitting):
    out, boot = misfitting
    for width, media, name in ((1200, "screen", "report_screenshot.png"), (A4_WIDTH, "print", "report_a4.png")):
        view(browser, out.as_uri(), width, media)
        check_page(browser, 7)
        shot = browser.screenshot()
        assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 50_000
        keep(name, shot)
    # The Caveats section lists E's bound hit with its share of draws, counted here independently (by value).
    caveats = browser.evaluate("document.querySelector('section#caveats').innerText")
    n_at = int(np.sum(boot.samples["E"].to_numpy() < 1e-6))
    assert n_at > 0
    assert f"E is at its lower bound 0 in {n_at} of {boot.n_draws} draws ({100 * n_at / boot.n_draws:.1f}%)" in caveats
    assert "beyond the largest run's compute" in caveats and "compute-optimal frontier reaches" in caveats


def test_the_printed_pdf_has_the_same_sections(browser, misfitting):
    out, _ = misfitting
    view(browser, out.as_uri(), 1200, "screen")
    headings = browser.evaluate(HEADINGS)
    pdf = browser.call(
        "Page.printToPDF",
        session=True,
        paperWidth=210 / 25.4,
        paperHeight=297 / 25.4,
        preferCSSPageSize=True,
        printBackground=True,
        generateDocumentOutline=True,
    )
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF-")
    keep("report.pdf", data)
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    assert pages >= 5
    # The PDF's outline (bookmarks from the headings): the title, then every section in order.
    titles = [
        re.sub(rb"\\(.)", rb"\1", t).decode("latin-1") for t in re.findall(rb"/Title\s*\(((?:\\.|[^\\)])*)\)", data)
    ]
    assert titles[0].startswith("Scaling-law report: chinchilla fitted to misfitting")
    assert titles[1 : 1 + len(headings)] == headings


def test_reports_of_a_joint_law_and_of_a_groups_bootstrap_render(browser, tmp_path_factory):
    for name in ("joint", "groups"):
        out = report_of(name, tmp_path_factory.mktemp(name))
        figures = len(re.findall(r'<img class="figure"', out.read_text()))
        assert figures >= 5
        for width, media in ((1200, "screen"), (A4_WIDTH, "print")):
            view(browser, out.as_uri(), width, media)
            check_page(browser, figures)
        keep(f"report_{name}_a4.png", browser.screenshot())
