"""The report in a real browser: headless Chromium over the DevTools pipe; no console errors, every section
and plot present and visible, no network requests, a screenshot saved (on screen and in print layout)."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from nlb_suite.runs import RunSpec, execute

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
LAPTOP = (1366, 800)

CHECK_JS = r"""
(() => {
  const vis = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 20 && r.height > 20 && s.visibility !== 'hidden' && s.display !== 'none' &&
           parseFloat(s.opacity) > 0; };
  const sections = [...document.querySelectorAll('section[data-section]')].map(s => ({
    title: s.dataset.section, id: s.id, visible: vis(s), heading: !!s.querySelector('h2, h3') }));
  const plots = [...document.querySelectorAll('figure svg.plot, img')].map(p => ({
    name: p.dataset.plot || p.getAttribute('src'), visible: vis(p),
    width: p.getBoundingClientRect().width, height: p.getBoundingClientRect().height,
    nText: p.querySelectorAll('text').length }));
  const empties = [...document.querySelectorAll('[data-empty]')].map(e => e.textContent);
  const resources = performance.getEntriesByType('resource').map(e => e.name);
  return { sections, plots, empties, resources, title: document.title,
           scrollWidth: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight };
})()
"""


class Browser:
    """Minimal Chrome DevTools Protocol client over --remote-debugging-pipe (no websocket library needed)."""

    def __init__(self, user_data: Path):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds() -> None:  # chrome reads commands on fd 3 and writes replies on fd 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={user_data}",
                "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--hide-scrollbars", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.events: queue.Queue = queue.Queue()
        self.replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._id = 0
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self.replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self.events.put(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self._cond:
            while self._id not in self.replies:
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"chromium: no reply to {method}")
                self._cond.wait(min(left, 0.5))
            reply = self.replies.pop(self._id)
        if "error" in reply:
            raise RuntimeError(f"chromium: {method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 60) -> list[dict]:
        """Wait for an event; return every event seen meanwhile (console messages included)."""
        seen, deadline = [], time.time() + timeout
        while time.time() < deadline:
            try:
                ev = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(ev)
            if ev.get("method") == method:
                return seen
        raise TimeoutError(f"chromium: no {method} event")

    def drain(self) -> list[dict]:
        out = []
        while not self.events.empty():
            out.append(self.events.get())
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)


def errors_in(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and browser log errors among DevTools events."""
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            out.append("exception: " + p.get("exceptionDetails", {}).get("text", ""))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append("log: " + p["entry"].get("text", ""))
    return out


def render(report: Path, shots: Path, name: str, profile: Path) -> dict:
    """Open the report in headless Chromium; check it; save screenshots (screen, print, above the fold)."""
    browser = Browser(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=sid)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": LAPTOP[0], "height": LAPTOP[1],
                     "deviceScaleFactor": 1, "mobile": False}, session=sid)
        browser.send("Page.navigate", {"url": report.resolve().as_uri()}, session=sid)
        events = browser.wait_event("Page.loadEventFired")
        time.sleep(0.3)
        result = browser.send("Runtime.evaluate", {"expression": CHECK_JS, "returnByValue": True}, session=sid)
        check = result["result"]["value"]
        events += browser.drain()
        check["errors"] = errors_in(events)
        check["requests"] = [e["params"]["request"]["url"] for e in events
                             if e.get("method") == "Network.requestWillBeSent"
                             and not e["params"]["request"]["url"].startswith(("file:", "data:"))]
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=sid)
        (shots / f"{name}-top.png").write_bytes(base64.b64decode(shot["data"]))
        full = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
            "x": 0, "y": 0, "width": LAPTOP[0], "height": min(check["height"], 16000), "scale": 1}}, session=sid)
        (shots / f"{name}-full.png").write_bytes(base64.b64decode(full["data"]))
        pdf = browser.send("Page.printToPDF", {"printBackground": True}, session=sid)
        (shots / f"{name}.pdf").write_bytes(base64.b64decode(pdf["data"]))
        check["pdf_bytes"] = len(base64.b64decode(pdf["data"]))
        check["errors"] += errors_in(browser.drain())
        return check
    finally:
        browser.close()


@pytest.fixture(scope="module")
def report_file(synthetic, tmp_path_factory):
    from nlb_suite.report import build_report

    data = synthetic("mc_maze_small")
    root = tmp_path_factory.mktemp("browser_runs")
    runs = [execute(RunSpec("oracle", "mc_maze_small", data=data, out=root / "oracle", ci=20), progress=False),
            execute(RunSpec("smoothing", "mc_maze_small", data=data, out=root / "smoothing", ci=20,
                            profile="fast"), progress=False),
            execute(RunSpec("smoothing", "mc_maze_small", data=data, phase="test", out=root / "smoothing_test",
                            profile="fast"), progress=False)]
    (runs[1].run_dir / "curves.csv").write_text("epoch,train_loss,val_loss\n0,1.0,1.1\n1,0.6,0.8\n2,0.4,0.7\n")
    return build_report([r.run_dir for r in runs], root / "report.html")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_chromium(report_file, tmp_path):
    shots = Path(os.environ.get("NLB_SUITE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    check = render(report_file, shots, "report", tmp_path / "chromium-profile")
    assert check["errors"] == []
    assert check["requests"] == [] and check["resources"] == [], "the page must not load anything"
    titles = [s["title"] for s in check["sections"]]
    assert "Summary" in titles
    for part in ("Metrics", "Condition-averaged rates (PSTHs)", "Single-trial rates", "Latent trajectories",
                 "Decoded vs recorded velocity", "Training curves", "Provenance"):
        assert titles.count(part) == 2, part  # phase val and phase test groups
    assert all(s["visible"] and s["heading"] for s in check["sections"]), check["sections"]
    names = [p["name"] for p in check["plots"]]
    for plot in ("metrics", "per-neuron", "psth", "single-trial", "trajectories", "decoding", "curves"):
        assert any(n.endswith(plot) for n in names), plot
    for p in check["plots"]:
        assert p["visible"] and p["nText"] > 3, p  # drawn, with titles/labels as text
    assert check["scrollWidth"] <= LAPTOP[0], "no horizontal scrolling on a laptop screen"
    assert any("no metrics" in e for e in check["empties"])  # the phase-test group says what is missing
    assert check["pdf_bytes"] > 10_000
    assert (shots / "report-full.png").stat().st_size > 10_000
    print(f"screenshots: {shots}")
