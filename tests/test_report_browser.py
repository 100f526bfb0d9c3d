"""The HTML page in a real browser: headless Chromium (Debian's ``chromium``) lays out a real
session's page, every chart has marks the layout gave a size and the style sheet a colour,
the page fits a phone's width, the console stays clean, and a full-page screenshot is kept.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (JSON messages
ending in a NUL byte, read from descriptor 3 and written to 4) by ``Browser`` below: no
webdriver, no websocket library, no new dependency. ``chromium --dump-dom`` could not measure
anything (sizes exist only after layout, and the page has no script to report them), and
selenium would add a package and a chromedriver for the same four calls.

Without ``/usr/bin/chromium`` the tests skip, unless ``DUALCACHE_REQUIRE_BROWSER=1`` (``.ci/run``
sets it: CI cannot skip them silently). Screenshots go to ``$DUALCACHE_ARTIFACTS`` when set
(CI's artifacts), else to the test's temporary directory.

``python tests/test_report_browser.py PAGE OUT.png [WIDTH [FIRST_ID [LAST_ID]]]`` screenshots a
page, or its sections FIRST_ID to LAST_ID (the README's docs/img/market-report.png is the
market example's page, 900 wide, ``route-share-and-do-hit-rate`` to
``top-kv-writing-call-sites-your-tests``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.internal.observability  # noqa: F401
import pytest
import pytest_dualcache.contracts.test_registered  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these it reaches for a network CI lacks
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
QUIET = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:benchmark")
SKIP_SUITE = ("-k", "not TestDualCacheContract")
MYDAL = """
    def save(kv, key):
        kv.put(key, "v")
"""
#: Two workloads, each busy for at least two hours in a row (KV writes, DO sets, DO hits and
#: misses), so every chart of the page has something to draw: four per workload, the group
#: bars, the bill and the call sites.
WORKLOADS = """
    import pytest
    import mydal


    @pytest.mark.dualcache_workload(scale=1000, name="shop")
    def test_shop(kv_namespace, do_cache, dualcache_clock):
        for day in range(2):
            for hour in range(3):
                for i in range(4 + 3 * hour):
                    mydal.save(kv_namespace, f"k{day}-{hour}-{i}")
                    do_cache.set(f"d{i}", i, ttl=3600)
                    do_cache.get(f"d{i}")
                do_cache.get("missing")
                dualcache_clock.advance(3600)
            dualcache_clock.advance(21 * 3600)


    @pytest.mark.dualcache_workload(scale=100_000, name="batch")
    def test_batch(kv_namespace, do_cache, dualcache_clock):
        for hour in range(2):
            mydal.save(kv_namespace, f"summary{hour}")
            do_cache.set("s", 1, ttl=60)
            do_cache.get("s")
            dualcache_clock.advance(3600)
"""
#: A workload busy for one simulated hour: each line chart has one point.
ONE_HOUR = """
    import pytest
    import mydal


    @pytest.mark.dualcache_workload(scale=10, name="hourly")
    def test_one_hour(kv_namespace, do_cache):
        mydal.save(kv_namespace, "a")
        do_cache.set("s", 1, ttl=60)
        do_cache.get("s")
"""

#: Run in the page once loaded: each chart, and each of its marks (columns and bars, a line
#: chart's lines, any dots) with the box the layout gave it and the paint the style sheet did.
MEASURE = """
Array.from(document.querySelectorAll("svg[data-chart]")).map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    chart: svg.dataset.chart, width: box.width, height: box.height, right: box.right,
    marks: Array.from(svg.querySelectorAll("rect.bar, polyline.line, circle")).map(mark => {
      const b = mark.getBoundingClientRect(), style = getComputedStyle(mark);
      return {
        kind: mark.tagName, width: b.width, height: b.height,
        paint: mark.tagName === "polyline" ? style.stroke : style.fill,
        inside: b.left >= box.left - 1 && b.right <= box.right + 1 &&
                b.top >= box.top - 1 && b.bottom <= box.bottom + 1,
      };
    }),
  };
})
"""
LAYOUT = """({scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth,
             height: document.documentElement.scrollHeight})"""
BLUE, KV_BAR = "rgb(59, 111, 182)", "rgb(192, 80, 77)"  # report_html.STYLE: .bar, .line; .bar.kv


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe; one page."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        to_chrome, self._commands = _pipe()
        self._replies, from_chrome = _pipe()
        self.log = profile / "chromium-stderr.log"
        self.timeout = timeout
        with self.log.open("wb") as stderr:
            # bash (dash takes one-digit descriptors only) puts the pipe's ends on 3 and 4 and
            # execs Chromium: no preexec_fn, unsafe where threads run (pytest-xdist's workers).
            self.process = subprocess.Popen(
                ["bash", "-c", f'exec "$@" 3<&{to_chrome} 4>&{from_chrome} {to_chrome}<&- '
                 f"{from_chrome}>&-", "bash", str(CHROMIUM), *FLAGS,
                 f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(to_chrome, from_chrome),
            )  # fmt: skip
        os.close(to_chrome)
        os.close(from_chrome)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command, return its result; events arriving meanwhile go to ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") != self._next_id:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            else:
                return reply["result"]

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self.call(method, self.session, **params)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event named ``method``, received already or next."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            self.events.append(self._receive())

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise RuntimeError(f"Chromium did not answer in {self.timeout:g} s{self._said()}")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed its pipe{self._said()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _said(self) -> str:
        return ": " + self.log.read_text(errors="replace")[-2000:]

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # it may go before it answers
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def _pipe() -> tuple[int, int]:
    """A pipe with both ends above 9 (so never 3 or 4) and closed on exec."""
    ends = []
    for end in os.pipe():
        ends.append(fcntl.fcntl(end, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(end)
    return ends[0], ends[1]


def console(events: list[dict[str, Any]]) -> list[str]:
    """What the page said: console calls, uncaught errors, and the browser's log for it
    (failed loads, security, deprecation and intervention warnings), all but verbose."""
    said = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            said.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            said.append(f"uncaught: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] != "verbose":
            entry = params["entry"]
            said.append(f"{entry['level']} ({entry['source']}): {entry['text']} {entry.get('url')}")
    return said


def render(browser: Browser, page: Path, png: Path, viewport: dict[str, Any]) -> dict[str, Any]:
    """Load ``page`` at ``viewport``, save a full-page screenshot to ``png``; the charts as
    measured, the page's layout, and what the console said."""
    browser.events.clear()
    for domain in ("Page", "Runtime", "Log"):
        browser.page(f"{domain}.enable")
    browser.page("Emulation.setDeviceMetricsOverride", **viewport)
    browser.page("Page.navigate", url=page.resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    charts, layout = browser.evaluate(MEASURE), browser.evaluate(LAYOUT)
    clip = {"x": 0, "y": 0, "width": viewport["width"], "height": layout["height"], "scale": 1}
    shot = browser.page(
        "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
    )
    png.write_bytes(base64.b64decode(shot["data"]))
    return {"charts": charts, "layout": layout, "console": console(browser.events)}


def png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", png
    return struct.unpack(">II", data[16:24])


def drawn(mark: dict[str, Any]) -> bool:
    """A column or bar is drawn with a width and a height; a line with either (a flat one
    has no height); a line of one point has neither, and shows nothing."""
    if mark["kind"] == "polyline":
        return mark["width"] > 0 or mark["height"] > 0
    return mark["width"] > 0 and mark["height"] > 0


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("DUALCACHE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DUALCACHE_REQUIRE_BROWSER=1 and {reason}")
        pytest.skip(reason)
    profile = Path(tempfile.mkdtemp(prefix="dualcache-chromium-"))
    driver = Browser(profile)
    try:
        yield driver
    finally:
        driver.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DUALCACHE_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def session_page(pytester: pytest.Pytester, tests: str) -> Path:
    """The page a real session of ``tests`` writes with --dualcache-html (contract suite
    deselected)."""
    pytester.makepyfile(mydal=textwrap.dedent(MYDAL), test_app=textwrap.dedent(tests))
    pytester.makeini("[pytest]\ndualcache_dal_modules = mydal\n")
    result = pytester.runpytest(
        "--dualcache", "test_app.py", *SKIP_SUITE, "--dualcache-html=r.html", *QUIET
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return pytester.path / "r.html"


def test_every_chart_draws_on_a_phone_and_the_console_is_clean(browser, pytester, artifacts):
    page = session_page(pytester, WORKLOADS)
    png = artifacts / "report-phone.png"
    seen = render(browser, page, png, PHONE)

    assert seen["console"] == []
    charts = {chart["chart"]: chart for chart in seen["charts"]}
    assert len(charts) == len(seen["charts"])  # one chart per name
    per_workload = ("kv-writes-hour", "kv-writes-day", "route-share", "do-hit-rate")
    assert set(charts) == {
        *(f"{chart}:{name}" for chart in per_workload for name in ("batch", "shop")),
        *("route-share", "do-hit-rate", "bill", "top-sites"),
    }
    for name, chart in charts.items():
        assert chart["width"] > 0 and chart["height"] > 0, name
        assert chart["right"] <= PHONE["width"], name  # within the screen, not cut off
        marks = chart["marks"]
        assert any(drawn(mark) for mark in marks), (name, marks)
        assert all(mark["inside"] for mark in marks), (name, marks)  # nothing spills over
        paint = KV_BAR if name.startswith("kv-writes") else BLUE
        assert {mark["paint"] for mark in marks} == {paint}, (name, marks)  # styled
    # The shop's six busy hours: six columns with a height, whatever the hours between; every
    # run of busy hours (here two hours or more) a line.
    assert sum(drawn(mark) for mark in charts["kv-writes-hour:shop"]["marks"]) == 6
    for name in ("route-share:shop", "do-hit-rate:shop", "route-share:batch"):
        assert all(drawn(mark) for mark in charts[name]["marks"]), charts[name]

    layout = seen["layout"]
    assert layout["scrollWidth"] <= layout["innerWidth"]  # no sideways scrolling on a phone
    assert png_size(png) == (PHONE["width"], layout["height"])


def test_a_one_hour_workload_shows_its_line_charts(browser, pytester, artifacts):
    page = session_page(pytester, ONE_HOUR)
    seen = render(browser, page, artifacts / "report-one-hour.png", PHONE)
    assert seen["console"] == []
    for chart in seen["charts"]:
        if chart["chart"].startswith(("route-share:", "do-hit-rate:")):
            assert chart["marks"] and all(
                mark["width"] > 0 or mark["height"] > 0 for mark in chart["marks"]
            ), chart


def main(page: Path, out: Path, width: int = 900, first: str = "", last: str = "") -> None:
    """Screenshot ``page`` at ``width`` into ``out``: the whole page, or the sections with
    ids ``first`` to ``last`` (ids as report_html makes them from the section titles)."""
    profile = Path(tempfile.mkdtemp(prefix="dualcache-chromium-"))
    driver = Browser(profile)
    try:
        viewport = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
        seen = render(driver, page, out, viewport)
        if first:
            top, bottom = driver.evaluate(
                f"[document.getElementById({json.dumps(first)}).getBoundingClientRect().top,"
                f" document.getElementById({json.dumps(last or first)})"
                ".getBoundingClientRect().bottom].map(y => y + scrollY)"
            )
            clip = {"x": 0, "y": top, "width": width, "height": bottom - top + 16, "scale": 1}
            shot = driver.page(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
            )
            out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.close()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"{out}: {png_size(out)}, console: {seen['console'] or 'clean'}")


if __name__ == "__main__":  # PAGE OUT.png [WIDTH [FIRST_ID [LAST_ID]]]
    main(Path(sys.argv[1]), Path(sys.argv[2]), *(int(a) for a in sys.argv[3:4]), *sys.argv[4:6])
