"""Drives tests/browser/host.html in headless Chromium (Dawn/Tint on SwiftShader): compiles
every kernel listed in DIR/kernels.json and replays every capture DIR/runs/*/capture.json
(written by tests/browser_tint.rs), then writes DIR/results.json and, per replayed capture,
the buffers after the replay as runs/NAME/browser_b{i}.bin. The Rust test judges the results.

Usage: python replay.py DIR   (the Python of scripts/setup-browser, which has Playwright)
"""

import base64
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking",
        "--disable-component-update"]


def main(root: Path) -> None:
    host = Path(__file__).resolve().parent / "host.html"
    kernels = json.loads((root / "kernels.json").read_text())
    runs = sorted(p for p in (root / "runs").iterdir() if (p / "capture.json").exists())
    results = {"compile": [], "runs": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page()
        page.goto(host.as_uri())
        results["chromium"] = browser.version
        results["adapter"] = page.evaluate("adapterInfo()")
        t0 = time.time()
        for k in kernels:
            try:
                r = page.evaluate("k => compileAll([k])", k)[0]
            except Exception as e:  # the page died with its GPU process: note it, go on
                r = {"ok": False, "messages": [f"page: {e}"]}
                page = browser.new_page()
                page.goto(host.as_uri())
            results["compile"].append(r)
            status = "ok" if r["ok"] else "; ".join(r["messages"])
            print(f"compiled {len(results['compile'])}/{len(kernels)} {k['name']}: {status}",
                  file=sys.stderr, flush=True)
        results["compile_seconds"] = time.time() - t0
        t0 = time.time()
        for run in runs:
            meta = json.loads((run / "meta.json").read_text())
            # A subgroup reduction assumes subgroups of at least this many lanes: replayed
            # only where the adapter's smallest subgroup holds them (the Rust test checks).
            if meta["subgroup_lanes"] > (results["adapter"]["subgroupMinSize"] or 0):
                continue
            cap = json.loads((run / "capture.json").read_text())
            bufs = [base64.b64encode((run / f"b{i}.bin").read_bytes()).decode()
                    for i in range(len(cap["buffers"]))]
            t1 = time.time()
            try:
                r = page.evaluate("([c, b]) => replay(c, b)", [cap, bufs])
            except Exception as e:
                r = {"error": f"page: {e}"}
                page = browser.new_page()
                page.goto(host.as_uri())
            entry = {"seconds": time.time() - t1}
            if "error" in r:
                entry["error"] = r["error"]
            else:
                for i, b in enumerate(r["buffers"]):
                    (run / f"browser_b{i}.bin").write_bytes(base64.b64decode(b))
                entry["ok"] = True
            results["runs"][run.name] = entry
            print(f"{run.name}: {entry}", file=sys.stderr, flush=True)
        results["replay_seconds"] = time.time() - t0
        browser.close()
    (root / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
