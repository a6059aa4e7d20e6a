"""Drive headless Chromium over the DevTools protocol (a pipe, no network, no extra package).

``--remote-debugging-pipe`` makes Chromium read protocol commands on file descriptor 3 and write
replies and events on 4, each a JSON message ended by a NUL byte. :class:`Browser` opens one page,
records every uncaught exception (``Runtime.exceptionThrown``), ``console.error`` /
``console.assert`` call and browser log entry of level error (a resource that fails to load), and
can evaluate JavaScript in the page and take screenshots. ``--dump-dom`` or ``--enable-logging``
would not see a script error reliably; this sees each one as it happens (tests/test_report_page.py
proves it on a page with deliberate errors).
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")


class BrowserError(RuntimeError):
    """Chromium ended, timed out or answered a command with an error."""


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, profile: Path, *, width: int = 1400, height: int = 1000, timeout: float = 60.0):
        self.timeout = timeout
        self.errors: list[str] = []
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # bash, not sh: dash takes single-digit descriptors only, and under pytest these are larger
        argv = ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}', str(CHROMIUM),
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self._proc = subprocess.Popen(argv, pass_fds=(to_browser, from_browser), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        os.close(to_browser)
        os.close(from_browser)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except BrowserError:
            pass
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass

    # ---------------------------------------------------------------- protocol

    def _send(self, message: dict) -> None:
        os.write(self._write, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium exited: {self._proc.stderr.read().decode(errors='replace')[-2000:]}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self._record(message)
        return message

    def _record(self, event: dict) -> None:
        """Keep the events; note every error the page produces."""
        self._events.append(event)
        method, params = event["method"], event.get("params") or {}
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text", "")
            self.errors.append(f"uncaught: {text} at {details.get('url', '')}:{details.get('lineNumber')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args") or ())
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict:
        """Send one command and return its result (events that arrive meanwhile are recorded)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result") or {}

    def wait_for(self, method: str) -> dict:
        """The first event named ``method`` not consumed yet (waits for it)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method:
                    return self._events.pop(i)
            self._receive(deadline)

    # ---------------------------------------------------------------- page

    def open(self, url: str) -> None:
        """Load ``url`` afresh (by way of about:blank: a change of #fragment alone would not reload)
        and wait for its load event, then let pending tasks run."""
        for target in ("about:blank", url):
            self._events = [e for e in self._events if e["method"] != "Page.loadEventFired"]
            self.call("Page.navigate", session=True, url=target)
            self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(function (done) { setTimeout(done, 50); })")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]}: {(details.get('exception') or {}).get('description', details)}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Write a PNG of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.call("Page.captureScreenshot", session=True, **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
