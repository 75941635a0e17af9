"""Browser tests of the live page (`attnflow view --live`): attnflow's kernels run by WebGPU in
headless Chromium (Dawn on SwiftShader), checked against the native cpu backend.

Run with the Python that scripts/setup-browser prints (Debian's chromium at /usr/bin/chromium,
Playwright for Python as the driver). A missing browser or a missing WebGPU fails these tests:
nothing here skips.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ATTNFLOW_BIN", str(ROOT / "target" / "release" / "attnflow"))
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# The live RK4 steps against the native cpu backend's (issue 23): both f32, different orders
# of summation; the measured differences are 1e-7 to 4e-7 (after 1 and 20 steps).
STEP_TOLERANCE = 1e-5


def attnflow(*args: str) -> str:
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"attnflow {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.stdout


@pytest.fixture(scope="module")
def live_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "live.html"
    out = attnflow("view", "--live", "--out", str(path))
    assert "wrote" in out and path.is_file(), out
    return path


@pytest.fixture(scope="module")
def browser():
    # No skip: a missing browser is a failure (scripts/setup-browser installs it).
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/setup-browser"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class LivePage:
    """The live page with every request other than file: and data: blocked and recorded."""

    def __init__(self, browser, path: Path, paused=True, no_webgpu=False):
        self.page = browser.new_page(viewport={"width": 1100, "height": 720})
        self.errors = []
        self.blocked = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if no_webgpu:
            self.page.add_init_script(
                "Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });"
            )

        def route(r):
            url = r.request.url
            if url.startswith("file:") or url.startswith("data:"):
                r.continue_()
            else:
                self.blocked.append(url)
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri() + ("?paused" if paused else ""))
        self.page.wait_for_function("() => window.attnflowLive && window.attnflowLive.ready",
                                    timeout=120000)

    def js(self, expr: str, arg=None):
        return self.page.evaluate(f"(arg) => {expr}", arg)

    def pixels(self) -> np.ndarray:
        w, h, data = self.page.evaluate("""() => {
            const gl = document.querySelector('#stage canvas').getContext('webgl2');
            const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
            const px = new Uint8Array(w * h * 4);
            gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
            let s = '';
            for (let i = 0; i < px.length; i += 0x8000) {
                s += String.fromCharCode.apply(null, px.subarray(i, i + 0x8000));
            }
            return [w, h, btoa(s)];
        }""")
        px = np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(h, w, 4)
        return px[:, :, :3].astype(np.float64)

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def live(browser, live_page):
    page = LivePage(browser, live_page)
    yield page
    page.close()


def tokens(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def native_steps(tmp: Path, x0: np.ndarray, steps: int, h: float, model: str, mask: str,
                 beta: float, qkv: str | None = None) -> np.ndarray:
    init = tmp / "x0.npy"
    np.save(init, x0)
    out = tmp / "run"
    args = ["run", "--backend", "cpu", "--quiet", "--init", f"file:{init}",
            "--steps", str(steps), "--t-end", repr(h * steps), "--integrator", "rk4",
            "--model", model, "--mask", mask, "--beta", repr(beta), "--metrics-every", "0",
            "--out", str(out)]
    if qkv:
        args += ["--qkv", qkv]
    attnflow(*args)
    return np.load(out / "final.npy").reshape(x0.shape).astype(np.float64)


def live_steps(live: LivePage, x0: np.ndarray, steps: int, h: float, model: str, mask: str,
               beta: float, qkv=None, profile=None) -> np.ndarray:
    n, d = x0.shape
    cfg = {"n": n, "d": d, "h": h, "model": model, "mask": mask, "beta": beta,
           "tokens": x0.reshape(-1).astype(float).tolist()}
    if profile:
        cfg["profile"] = profile
    if qkv:
        cfg.update({k: v.reshape(-1).astype(float).tolist() for k, v in qkv.items()})
    assert live.js("attnflowLive.load(arg)", cfg) is True
    live.js("attnflowLive.step(arg)", steps)
    return np.array(live.js("attnflowLive.read()")).reshape(n, d)


CASES = [(d, model, mask) for d in (2, 3) for model in ("sa", "usa") for mask in ("full", "causal")]
# The page's own choice on SwiftShader (llvmpipe's kernels), and the kernels every hardware
# profile gets at d <= 3 (webgpu-defaults stands for them: one specialisation), forced.
PROFILES = [None, "webgpu-defaults"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("d,model,mask", CASES)
def test_one_live_step_equals_the_native_cpu_step(d, model, mask, profile, live, tmp_path):
    n = 257 if d == 2 else 300
    x0 = tokens(n, d, seed=10 * d + len(model) + len(mask))
    h, beta = 0.1, 4.0 if model == "sa" else 1.5
    native = native_steps(tmp_path, x0, 1, h, model, mask, beta)
    page = live_steps(live, x0, 1, h, model, mask, beta, profile=profile)
    if profile:
        assert profile in live.page.inner_text("#kernel")
    moved = np.abs(native - x0).max()
    assert moved > 1e-3, f"the native step barely moved the tokens ({moved:.2e})"
    err = np.abs(page - native).max()
    print(f"d = {d}, {model}, {mask}, {profile or 'adapter'}: largest difference from the cpu backend {err:.2e}")
    assert err <= STEP_TOLERANCE, f"live step differs from the cpu backend's by {err:.2e}"
    assert live.errors == [], live.errors


def test_one_live_step_with_given_matrices(live, tmp_path):
    """Q, K, V given (not identity): K^T Q and V reach the kernels as the native backend's."""
    d, n = 3, 200
    rng = np.random.default_rng(7)
    mats = {k: (np.eye(d) + 0.4 * rng.standard_normal((d, d))).astype(np.float32)
            for k in ("q", "k", "v")}
    folder = tmp_path / "qkv"
    folder.mkdir()
    for k, m in mats.items():
        np.save(folder / f"{k.upper()}.npy", m)
    x0 = tokens(n, d, seed=3)
    native = native_steps(tmp_path, x0, 1, 0.1, "sa", "full", 3.0, qkv=str(folder))
    page = live_steps(live, x0, 1, 0.1, "sa", "full", 3.0, qkv=mats)
    err = np.abs(page - native).max()
    assert err <= STEP_TOLERANCE, f"live step differs from the cpu backend's by {err:.2e}"
    # Not the identity model's step: the matrices were used.
    ident = live_steps(live, x0, 1, 0.1, "sa", "full", 3.0)
    assert np.abs(ident - page).max() > 1e-3
    assert live.errors == [], live.errors


def test_tokens_move_and_stay_on_the_sphere(live, tmp_path):
    x0 = tokens(512, 3, seed=1)
    after = live_steps(live, x0, 20, 0.1, "sa", "full", 4.0)
    assert np.abs(after - x0).mean() > 1e-2, "20 steps did not move the tokens"
    norms = np.linalg.norm(after, axis=1)
    assert np.abs(norms - 1).max() < 1e-5, norms
    # Still the native trajectory after 20 steps (t = 2).
    native = native_steps(tmp_path, x0, 20, 0.1, "sa", "full", 4.0)
    err = np.abs(after - native).max()
    print(f"20 steps: largest difference from the cpu backend {err:.2e}")
    assert err <= STEP_TOLERANCE, err
    assert live.errors == [], live.errors


def test_page_uses_attnflows_kernels_and_the_adapters_profile(live, live_page, tmp_path):
    """Every kernel text in the page is `attnflow kernels --emit`'s file for its profile, d and
    mask; on SwiftShader (a fallback adapter) the page picks the llvmpipe (software) profile."""
    emit = tmp_path / "kernels"
    attnflow("kernels", "--emit", str(emit))
    text = live_page.read_text()
    m = re.search(r'<script type="application/json" id="attnflow-data">(.*?)</script>', text, re.S)
    data = json.loads(m.group(1).replace("<\\/", "</"))
    compared = 0
    for key, i in data["choose"].items():
        profile, d, mask = key.split("/")
        for k in data["specs"][i]["kernels"]:
            name = f"{profile}.{k['name']}.d{d}" + (f".{mask}" if k["name"] == "attention" else "")
            assert data["texts"][k["text"]] == (emit / f"{name}.wgsl").read_text(), name
            compared += 1
    assert compared == 7 * 2 * 2 * 6
    assert live.js("attnflowLive.profile") == "llvmpipe"
    checks = live.js("attnflowLive.planChecks")
    assert checks["mismatches"] == 0 and checks["checked"] > 100, checks
    assert live.blocked == [], live.blocked


def test_running_page_moves_the_picture_and_shows_pairs_per_second(browser, live_page):
    page = LivePage(browser, live_page, paused=False)
    try:
        page.page.wait_for_function("() => window.attnflowLive.steps >= 3", timeout=120000)
        first = page.pixels()
        steps = page.js("attnflowLive.steps")
        page.page.wait_for_function(f"() => window.attnflowLive.steps >= {steps + 10}",
                                    timeout=120000)
        assert np.abs(page.pixels() - first).mean() > 0.05, "the tokens did not move on screen"
        assert first.var() > 5.0, "the canvas is blank"
        rate = page.js("attnflowLive.rate")
        assert rate > 1e5, rate
        shown = page.page.inner_text("#rate")
        assert float(shown) > 1e5, shown
        assert page.errors == [], page.errors
        assert page.blocked == [], page.blocked
    finally:
        page.close()


def test_without_webgpu_the_page_says_so_and_plays_back(browser, live_page):
    page = LivePage(browser, live_page, no_webgpu=True)
    try:
        assert page.js("attnflowLive.webgpu") is False
        text = page.page.inner_text("#side")
        assert "no WebGPU" in text and "playback only" in text, text
        assert page.page.locator("#live-controls").is_hidden()
        before = page.pixels()
        page.page.locator("#playback-time").fill("30")
        after = page.pixels()
        assert before.var() > 5.0 and np.abs(after - before).mean() > 0.2
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_docs_live_html_is_current(live_page):
    committed = ROOT / "docs" / "live.html"
    assert committed.is_file(), "docs/live.html is missing: attnflow view --live --out docs/live.html"
    assert committed.read_bytes() == live_page.read_bytes(), (
        "docs/live.html is stale: run `attnflow view --live --out docs/live.html`"
    )


def test_live_refusals_are_clear(tmp_path):
    for args, says in [
        (["view", "--live", str(tmp_path)], "cannot be used with"),
        (["view", "--live", "--out", str(tmp_path / "live.txt")], ".html"),
        (["view", "--live", "--out", str(tmp_path / "no" / "live.html")], "does not exist"),
        (["view", "--live", "--max-tokens", "10"], "cannot be used with"),
    ]:
        p = subprocess.run([BIN, *args], capture_output=True, text=True)
        assert p.returncode != 0 and says in p.stderr, (args, p.stderr)
    assert list(tmp_path.iterdir()) == []
