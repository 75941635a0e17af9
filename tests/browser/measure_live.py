"""Pairs/s of the live page (`attnflow view --live`) in headless Chromium: SA, full mask, RK4,
d = 3, for several n, on whatever WebGPU adapter the browser has (SwiftShader here).

    $(scripts/setup-browser) tests/browser/measure_live.py [N ...]

Each n: one warm-up step, then steps until 3 s have passed; pairs/s = 4 n^2 steps / seconds
(four field evaluations per RK4 step), timed from submission to completion.
"""

import sys
import tempfile
import time
from pathlib import Path

from test_live import ARGS, CHROMIUM, attnflow
from playwright.sync_api import sync_playwright


def main():
    sizes = [int(v) for v in sys.argv[1:]] or [1024, 4096, 16384]
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "live.html"
        attnflow("view", "--live", "--out", str(page_path))
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page()
            page.goto(page_path.as_uri() + "?paused")
            page.wait_for_function("() => window.attnflowLive && window.attnflowLive.ready",
                                   timeout=120000)
            print("profile", page.evaluate("() => attnflowLive.profile"))
            for n in sizes:
                page.evaluate("(n) => attnflowLive.load({n, d: 3, beta: 4, h: 0.1})", n)
                page.evaluate("() => attnflowLive.step(1)")
                steps, seconds, start = 0, 0.0, time.time()
                while time.time() - start < 3.0:
                    seconds += page.evaluate("() => attnflowLive.step(1)")
                    steps += 1
                rate = 4 * n * n * steps / seconds
                shown = page.inner_text("#rate")
                print(f"n = {n}: {steps} steps in {seconds:.2f} s, {rate:.3e} pairs/s "
                      f"(page shows {shown})")
            b.close()


if __name__ == "__main__":
    main()
