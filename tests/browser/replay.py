"""Drives tests/browser/host.html in headless Chromium (Dawn/Tint on SwiftShader) for
tests/gpu_specialisations.rs: compiles every kernel listed in DIR/kernels.json once, on one
device, then replays every capture DIR/runs/NAME/capture.json as the test writes them (a run is
ready once its meta.json exists; DIR/runs/DONE says no more will come), and writes
DIR/results.json and, per replayed capture, the buffers after the replay as
runs/NAME/browser_b{i}.bin. The Rust test judges the results.

The compiles run while the native side of the test compiles the same kernels on llvmpipe:
each compiler takes one of the two cores.

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
# The native side's longest run on a loaded 2-core machine is well under this.
WAIT_SECONDS = 3600


def log(*args):
    print("replay.py:", *args, file=sys.stderr, flush=True)


def main(root: Path) -> None:
    host = Path(__file__).resolve().parent / "host.html"
    kernels = json.loads((root / "kernels.json").read_text())
    results = {"compile": [], "runs": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)

        def fresh_page():
            page = browser.new_page()
            page.goto(host.as_uri())
            return page

        page = fresh_page()
        results["chromium"] = browser.version
        results["adapter"] = page.evaluate("adapterInfo()")
        t0 = time.time()
        for k in kernels:
            try:
                r = page.evaluate("k => compileOne(k)", k)
            except Exception as e:  # the page died with its GPU process: note it, go on
                r = {"ok": False, "messages": [f"page: {e}"]}
                page = fresh_page()
            results["compile"].append(r)
            if not r["ok"]:
                log(f"compile {k['name']}: {'; '.join(r['messages'])}")
        results["compile_seconds"] = time.time() - t0
        log(f"compiled {len(kernels)} kernels in {results['compile_seconds']:.1f} s")

        t0 = time.time()
        done = set()
        while True:
            finished = (root / "runs" / "DONE").exists()
            ready = sorted(d for d in (root / "runs").iterdir()
                           if d.is_dir() and d.name not in done and (d / "meta.json").exists())
            for run in ready:
                done.add(run.name)
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
                    page = fresh_page()
                entry = {"seconds": time.time() - t1}
                if "error" in r:
                    entry["error"] = r["error"]
                    log(f"{run.name}: {r['error']}")
                else:
                    for i, b in enumerate(r["buffers"]):
                        (run / f"browser_b{i}.bin").write_bytes(base64.b64decode(b))
                    entry["ok"] = True
                results["runs"][run.name] = entry
            if finished and not ready:
                break
            if time.time() - t0 > WAIT_SECONDS:
                log(f"no DONE from the test after {WAIT_SECONDS} s")
                sys.exit(1)
            if not ready:
                time.sleep(0.5)
        results["replay_seconds"] = time.time() - t0
        browser.close()
    (root / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
