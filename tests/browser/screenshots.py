"""Screenshots of `attnflow view` (and `view --live`) for docs/viewer/ (not a test): runs small cpu runs, writes
their pages and photographs them in headless Chromium.

    python tests/browser/screenshots.py      # with the Python scripts/setup-browser prints
    python tests/browser/screenshots.py live # only the live page's
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ATTNFLOW_BIN", str(ROOT / "target" / "release" / "attnflow"))
OUT = ROOT / "docs" / "viewer"
ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking",
        "--disable-component-update"]


def sh(*args):
    subprocess.run([BIN, *args], check=True, stdout=subprocess.DEVNULL)


def live(pg, tmp):
    # The live page, SA at beta = 6 from the page's seed 0, paused at t = 7.
    sh("view", "--live", "--out", str(tmp / "live.html"))
    pg.goto((tmp / "live.html").as_uri() + "?paused")
    pg.wait_for_function("window.attnflowLive && window.attnflowLive.ready", timeout=120000)
    pg.evaluate("attnflowLive.load({n: 1024, d: 3, beta: 6, h: 0.1, seed: 0})")
    pg.evaluate("attnflowLive.step(70)")
    pg.evaluate("attnflowLive.show()")
    pg.screenshot(path=str(OUT / "live.png"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="attnflow-shots-"))
    if sys.argv[1:] == ["live"]:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            live(b.new_page(viewport={"width": 1200, "height": 780}, bypass_csp=True), tmp)
            b.close()
        return
    common = ["--backend", "cpu", "--quiet", "--save-every", "10"]
    sh("run", "--n", "1024", "--d", "3", "--beta", "6", "--t-end", "12", "--steps", "240",
       *common, "--out", str(tmp / "d3"))
    sh("run", "--n", "256", "--d", "2", "--beta", "9", "--t-end", "20", "--steps", "200",
       *common, "--out", str(tmp / "d2"))
    sh("run", "--n", "512", "--d", "16", "--beta", "1,3", "--t-end", "15", "--steps", "150",
       *common, "--out", str(tmp / "d16"))
    for name in ["d3", "d2", "d16"]:
        sh("view", str(tmp / name))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        pg = b.new_page(viewport={"width": 1200, "height": 780}, bypass_csp=True)

        def load(name):
            pg.goto((tmp / name / "view.html").as_uri())
            pg.wait_for_function("window.attnflowViewer && window.attnflowViewer.ready")

        load("d3")
        pg.locator("#time").fill("8")
        pg.select_option("#colour", "cluster")
        pg.screenshot(path=str(OUT / "sphere-clusters.png"))
        # Click the front-most token near the middle: its attention row.
        box = pg.locator("#stage canvas").bounding_box()
        n = pg.evaluate("window.attnflowViewer.data.shown")
        for i in range(n):
            s = pg.evaluate(f"window.attnflowViewer.screenOf({i})")
            if s["front"] and abs(s["x"] - box["x"] - box["width"] / 2) < 150 \
                    and abs(s["y"] - box["y"] - box["height"] / 2) < 150:
                pg.mouse.click(s["x"], s["y"])
                break
        pg.screenshot(path=str(OUT / "sphere-attention.png"))
        load("d2")
        pg.locator("#time").fill("6")
        pg.select_option("#colour", "cluster")
        pg.screenshot(path=str(OUT / "circle.png"))
        load("d16")
        pg.select_option("#system", "0")
        pg.locator("#time").fill("5")
        pg.select_option("#colour", "cluster")
        pg.screenshot(path=str(OUT / "pca-d16.png"))
        live(pg, tmp)
        b.close()
    print("wrote", *sorted(str(f.relative_to(ROOT)) for f in OUT.glob("*.png")), file=sys.stderr)


if __name__ == "__main__":
    main()
