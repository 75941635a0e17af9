"""Browser tests of `attnflow view`: pages made from real runs, opened in headless Chromium.

Run by scripts/test with the Python that scripts/setup-browser prints (Debian's chromium at
/usr/bin/chromium, Playwright for Python as the driver). A missing browser fails these tests:
nothing here skips.
"""

from __future__ import annotations

import base64
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
CLUSTER_COS = 0.99

# name -> (command, arguments). Small runs on the cpu backend: the whole set takes seconds.
COMMON = ["--backend", "cpu", "--quiet", "--save-every", "10"]
RUNS = {
    "d2": ["run", "--n", "128", "--d", "2", "--beta", "9", "--t-end", "15", "--steps", "150"],
    "d3": ["run", "--n", "256", "--d", "3", "--beta", "4", "--t-end", "20", "--steps", "200"],
    "d8": ["run", "--n", "200", "--d", "8", "--beta", "2", "--t-end", "10", "--steps", "100"],
    "batch3": ["run", "--n", "128", "--d", "3", "--beta", "1,4,9", "--t-end", "10",
               "--steps", "100"],
    "causal": ["run", "--n", "160", "--d", "3", "--beta", "4", "--mask", "causal",
               "--t-end", "10", "--steps", "100"],
    "cfm": ["cfm", "--m", "64", "--n", "256", "--d", "3", "--beta", "4", "--t-end", "5",
            "--steps", "50"],
}


def attnflow(*args: str) -> str:
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"attnflow {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.stdout


def cli_clusters(stdout: str) -> list:
    m = re.search(r"clusters at the last snapshot \(cos >= [0-9.]+\): ([0-9 ]+)", stdout)
    assert m, stdout
    return [int(v) for v in m.group(1).split()]


def numpy_clusters(x: np.ndarray) -> int:
    """Connected components of cos >= CLUSTER_COS, by label propagation (independent of the
    Rust union-find)."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    adj = (u @ u.T) >= CLUSTER_COS
    label = np.arange(len(x))
    while True:
        new = np.array([label[adj[i]].min() for i in range(len(x))])
        if np.array_equal(new, label):
            return len(np.unique(label))
        label = new


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    base = tmp_path_factory.mktemp("viewer")
    out = {}
    for name, args in RUNS.items():
        folder = base / name
        attnflow(*args, *COMMON, "--out", str(folder))
        stdout = attnflow("view", str(folder))
        out[name] = (folder, folder / "view.html", stdout)
    return out


@pytest.fixture(scope="module")
def browser():
    # No skip: a missing browser is a failure (scripts/setup-browser installs it).
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/setup-browser"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page opened with every request other than file: and data: blocked and recorded."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1100, "height": 720})
        self.errors = []
        self.blocked = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r):
            url = r.request.url
            if url.startswith("file:") or url.startswith("data:"):
                r.continue_()
            else:
                self.blocked.append(url)
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.attnflowViewer && window.attnflowViewer.ready",
                                    timeout=30000)

    def pixels(self) -> np.ndarray:
        """The 3-D canvas as an RGB array, read with gl.readPixels (the page keeps its drawing
        buffer) and passed back as base64."""
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

    def canvas_box(self):
        return self.page.locator("#stage canvas").bounding_box()

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def opened(pages, browser):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = Page(browser, pages[name][1])
        return cache[name]

    yield get
    for p in cache.values():
        p.close()


ALL = list(RUNS)


@pytest.mark.parametrize("name", ALL)
def test_page_draws_without_errors_and_without_network(name, opened, pages):
    page = opened(name)
    assert page.errors == [], page.errors
    assert page.blocked == [], f"the page asked the network for {page.blocked}"
    px = page.pixels()
    # A blank canvas has variance 0; the sparsest page (3 clusters on a circle) about 20.
    assert px.var() > 5.0, f"the canvas is blank (pixel variance {px.var():.1f})"
    drawn = (np.abs(px - px[0, 0]).sum(axis=2) > 30).sum()
    assert drawn > 100, f"only {drawn} pixels differ from the background"
    size = pages[name][1].stat().st_size
    assert size < 20e6, size


@pytest.mark.parametrize("name", ALL)
def test_slider_changes_the_picture(name, opened):
    page = opened(name)
    frames = page.page.evaluate("window.attnflowViewer.data.times.length")
    assert frames > 2
    last = page.pixels()
    slider = page.page.locator("#time")
    slider.fill("0")
    first = page.pixels()
    assert np.abs(first - last).mean() > 0.5, "moving the slider to t = 0 changed nothing"
    assert page.page.evaluate("window.attnflowViewer.state.frame") == 0
    slider.fill(str(frames - 1))
    assert np.abs(page.pixels() - last).mean() < 1e-9
    assert page.errors == [], page.errors


@pytest.mark.parametrize("name", ["d3", "d8", "batch3", "cfm"])
def test_rotating_changes_the_picture(name, opened):
    page = opened(name)
    before = page.pixels()
    box = page.canvas_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.page.mouse.move(cx, cy)
    page.page.mouse.down()
    page.page.mouse.move(cx + 80, cy + 30, steps=8)
    page.page.mouse.move(cx + 160, cy + 40, steps=8)
    page.page.mouse.up()
    after = page.pixels()
    assert np.abs(after - before).mean() > 0.5, "dragging did not rotate the view"
    assert page.errors == [], page.errors


@pytest.mark.parametrize("name", ALL)
def test_cluster_count_equals_the_cli_and_numpy(name, opened, pages):
    folder, _, stdout = pages[name]
    page = opened(name)
    page.page.locator("#time").fill(str(page.page.evaluate("window.attnflowViewer.data.times.length") - 1))
    page.page.select_option("#colour", "cluster")
    cli = cli_clusters(stdout)
    traj = np.load(folder / "traj.npy").astype(np.float64)
    if traj.ndim == 3:
        traj = traj[:, None]
    for s in range(traj.shape[1]):
        if len(cli) > 1:
            page.page.select_option("#system", str(s))
        shown = int(page.page.locator("#clusters").get_attribute("data-count"))
        assert shown == cli[s], (s, shown, cli)
        assert shown == numpy_clusters(traj[-1, s]), (s, shown)
    assert page.errors == [], page.errors


@pytest.mark.parametrize("name", ["d2", "d3", "d8", "batch3", "causal"])
def test_clicking_a_token_colours_by_its_attention(name, opened):
    page = opened(name)
    pg = page.page
    pg.select_option("#colour", "index")
    before = page.pixels()
    box = page.canvas_box()
    # A token drawn well inside the canvas, on the front of the sphere.
    target = pg.evaluate("""(box) => {
        const v = window.attnflowViewer;
        for (let i = 0; i < v.data.shown; i++) {
            const s = v.screenOf(i);
            if (s.front && s.x > box.x + 20 && s.x < box.x + box.width - 20
                && s.y > box.y + 20 && s.y < box.y + box.height - 20) return s;
        }
        return null;
    }""", box)
    assert target is not None
    pg.mouse.click(target["x"], target["y"])
    info = pg.locator("#attn-info")
    assert info.get_attribute("data-sum") is not None, info.inner_text()
    assert pg.eval_on_selector("#colour", "e => e.value") == "attention"
    total = float(info.get_attribute("data-sum"))
    assert abs(total - 1.0) < 1e-9, total
    shown = float(pg.locator("#attn-sum").inner_text())
    assert abs(shown - 1.0) < 1e-6, shown
    after = page.pixels()
    changed = (np.abs(after - before).sum(axis=2) > 30).sum()
    assert changed > 20, f"the colours did not change ({changed} pixels)"
    assert page.errors == [], page.errors


def test_attention_weights_match_numpy(opened, pages):
    """The page's weights of a clicked token equal softmax(beta <x_i, x_j>) over the saved
    tokens (Q = K = I), within the page's int16 quantisation of the tokens."""
    folder = pages["causal"][0]
    pg = opened("causal").page
    pg.locator("#time").fill("3")
    w = pg.evaluate("""() => {
        const v = window.attnflowViewer; v.state.clicked = 40; v.state.colour = 'attention';
        v.setFrame(3);
        return Array.from(v.state.weights, (x) => Number.isNaN(x) ? null : x);
    }""")
    traj = np.load(folder / "traj.npy").astype(np.float64)
    snap = pg.evaluate("window.attnflowViewer.data.snapshot_index[3]")
    x = traj[snap]
    s = 4.0 * x[:41] @ x[40]
    want = np.exp(s - s.max())
    want /= want.sum()
    got = np.array(w[:41], dtype=np.float64)
    assert all(v is None for v in w[41:]), "the causal mask hides later tokens"
    assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()


def test_cfm_page_says_why_no_attention(opened):
    text = opened("cfm").page.locator("#attn-info").inner_text()
    assert "context" in text, text


def test_sampled_page_states_its_sample(tmp_path, browser, pages):
    folder = pages["d3"][0]
    out = tmp_path / "sample.html"
    stdout = attnflow("view", str(folder), "--out", str(out), "--max-tokens", "100")
    assert "100 of 256 tokens" in stdout, stdout
    page = Page(browser, out)
    try:
        assert "100 of 256" in page.page.locator("#notes").inner_text()
        assert int(page.page.locator("#clusters").get_attribute("data-count")) == cli_clusters(stdout)[0]
        assert page.errors == []
    finally:
        page.close()


def test_refusals_are_clear_and_write_nothing(tmp_path, pages):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = subprocess.run([BIN, "view", str(empty)], capture_output=True, text=True)
    assert p.returncode == 1 and "not an output folder of attnflow" in p.stderr, p.stderr
    assert list(empty.iterdir()) == [] or all(f.name.startswith(".attnflow") for f in empty.iterdir())
    # An experiment's folder holds CSV data and figures, no trajectory: refused, and says why.
    exp = tmp_path / "experiment"
    attnflow("experiment", "integrator-order", "--quick", "--backend", "cpu", "--quiet",
             "--out", str(exp))
    p = subprocess.run([BIN, "view", str(exp)], capture_output=True, text=True)
    assert p.returncode == 1 and "is an experiment's folder" in p.stderr, p.stderr
    assert not (exp / "view.html").exists()
    # A run without a trajectory: shows the final state and says so.
    fin = tmp_path / "final"
    attnflow("run", "--n", "64", "--d", "3", "--t-end", "1", "--steps", "10", "--backend", "cpu",
             "--quiet", "--out", str(fin))
    stdout = attnflow("view", str(fin))
    assert "only the final state is shown" in stdout, stdout
    # A page over an existing one is replaced whole; a bad --out is refused before writing.
    folder = pages["d2"][0]
    p = subprocess.run([BIN, "view", str(folder), "--out", str(tmp_path / "x.txt")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and ".html" in p.stderr, p.stderr
    assert not (tmp_path / "x.txt").exists()
    leftovers = [f for f in folder.iterdir() if ".tmp-" in f.name]
    assert leftovers == [], leftovers
