#!/usr/bin/env python3
"""Drives headless Chromium through the DevTools protocol, for tests that must press buttons.

Chromium is started with --remote-debugging-pipe: the protocol's JSON messages, each ended by
a NUL byte, go in on the child's fd 3 and come out on its fd 4, so nothing but the standard
library is needed (no WebSocket client).

Usage: cdp.py CHROMIUM URL STEPS_JSON
STEPS_JSON is a list of steps, run in order on the page opened at URL:
  {"eval": "JS"}                               the value of the expression (promises awaited)
  {"wait_for": "JS", "timeout": SECONDS}       polls every 50 ms until the expression is
                                               truthy; its value and the seconds it took
  {"navigate": "URL"}                          opens another address, waits for its load
  {"screenshot": "PATH"}                       a PNG of the page as it is now
Prints one JSON list on stdout: each step's result. Exits 1 (with what happened on stderr)
when a step fails or times out, or when the page logs an error or throws.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium):
        self.profile = tempfile.mkdtemp(prefix="tracelab-cdp-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def onto_3_and_4():
            # Through free numbers first: the pipes may themselves be fds 3 and 4.
            read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,1000",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=onto_3_and_4,
            # Kept open in the child (after preexec_fn, the others are closed).
            pass_fds=(3, 4),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None
        self.problems = []

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self, deadline):
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        message = json.loads(message)
        self.note(message)
        return message

    def note(self, message):
        """Console errors and uncaught exceptions are failures of the page."""
        method = message.get("method")
        if method == "Runtime.exceptionThrown":
            details = message["params"]["exceptionDetails"]
            self.problems.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and message["params"]["type"] in ("error", "warning", "assert"):
            args = [a.get("value", a.get("description")) for a in message["params"]["args"]]
            self.problems.append(f"console.{message['params']['type']}: {args}")
        elif method == "Log.entryAdded" and message["params"]["entry"]["level"] == "error":
            self.problems.append(f"log: {message['params']['entry']['text']}")

    def call(self, method, params=None, session=True, timeout=30):
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_event(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(deadline)
            if message.get("method") == name:
                return message

    def open(self, url):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.navigate(url)

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    chromium, url, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    browser = Browser(chromium)
    results = []
    try:
        browser.open(url)
        for step in steps:
            if "eval" in step:
                results.append(browser.evaluate(step["eval"]))
            elif "wait_for" in step:
                started = time.monotonic()
                deadline = started + step.get("timeout", 10)
                last = None
                while True:
                    try:
                        value = browser.evaluate(step["wait_for"])
                    except RuntimeError as failure:
                        # A page in the middle of navigating has no context to evaluate in.
                        value, last = None, failure
                    if value:
                        results.append({"value": value, "seconds": time.monotonic() - started})
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"not within {step.get('timeout', 10)} s: {step['wait_for']} (last error: {last})"
                        )
                    time.sleep(0.05)
            elif "navigate" in step:
                browser.navigate(step["navigate"])
                results.append(None)
            elif "screenshot" in step:
                shot = browser.call("Page.captureScreenshot", {"format": "png"})
                with open(step["screenshot"], "wb") as out:
                    out.write(base64.b64decode(shot["data"]))
                results.append(step["screenshot"])
            if browser.problems:
                raise RuntimeError(f"the page reported problems: {browser.problems}")
    except Exception as failure:  # noqa: BLE001 - every failure is reported the same way
        print(f"step {len(results) + 1} failed: {failure}", file=sys.stderr)
        print(json.dumps(results), file=sys.stderr)
        browser.close()
        sys.exit(1)
    browser.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
