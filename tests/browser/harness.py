"""The real app in a real browser: serve `app.py` with Streamlit, drive Debian's Chromium with Playwright.

Shared by the browser tests (`tests/browser/`), `make screenshots` (`tests/screenshots.py`) and the
live-latency benchmark (`bench/live_latency.py`). Nothing here downloads a browser: Playwright is only
the driver, and the browser is the system's `/usr/bin/chromium` (or $TWINBOARD_CHROMIUM).

Waits are generous: on the 2-core machine this was built on, with other work running, one page run
took 5-15 s and a pair's framework imports 30-45 s. Headless Chromium has no GPU: WebGL (plotly's
`scattergl`) runs on SwiftShader, on the CPU; 7 charts of 4 `scattergl` traces took 14-24 s to draw
there, against 3 s as SVG `scatter` (the charts are SVG now, partly for that reason).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TWINBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
VIEWPORT = {"width": 1400, "height": 900}
ENABLE_HINT = ("the browser tests drive Debian's Chromium at /usr/bin/chromium; enable them with "
               "`sudo apt-get install chromium` (or point TWINBOARD_CHROMIUM at a Chromium binary). "
               "Never `playwright install`: no downloaded browsers here.")
# Paths of the pages under st.navigation (the file name without .py; Launch is the default page at /).
PAGES = {"Launch": "", "Scalars": "scalars", "Histograms": "histograms", "Images": "images", "Embeddings": "embeddings",
         "Graphs": "graphs", "Parity": "parity", "Speed": "speed", "Deploy": "deploy", "Sweeps": "sweeps",
         "Upload": "upload"}
PAGE_FILES = {title: REPO / "pages" / f"{path or 'launch'}.py" for title, path in PAGES.items()}
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning'][data-test-connection-state='CONNECTED']"


def chromium_missing() -> str | None:
    """Why the browser cannot run here (a sentence that says how to fix it), or None when it can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no executable Chromium at {CHROMIUM}: {ENABLE_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    return None


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`twinboard serve` (what `make run` runs) on a free loopback port, in its own process group, logs to `log_path`."""

    def __init__(self, logdir: Path, log_path: Path, env: dict | None = None, port: int | None = None,
                 args: tuple[str, ...] = ()):
        self.logdir, self.log_path, self.args = Path(logdir), Path(log_path), tuple(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TWINBOARD_LOGDIR": str(self.logdir), **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> "AppServer":
        self.logdir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "twinboard", "--logdir", str(self.logdir), "serve", "--port", str(self.port),
               "--", "--server.fileWatcherType", "none", *self.args]  # as `make run` serves it
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"streamlit did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL after 10 s."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait(timeout=5)

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- reading the page -----------------------------------------------------------------------------
def open_page(page, server: AppServer, title: str, timeout: float = 90_000) -> None:
    """Go to one page of the app and wait until its script has run once."""
    page.goto(f"{server.url}/{PAGES[title]}", wait_until="domcontentloaded")
    wait_idle(page, timeout)


def wait_idle(page, timeout: float = 90_000) -> None:
    """Wait until the app is connected and no script run is in progress.

    A widget change requests a rerun asynchronously, so after an interaction wait for what it should
    show (a locator), not only for this."""
    page.wait_for_selector(IDLE, state="attached", timeout=timeout)



def choose_option(page, combo, option: str, tries: int = 3, timeout: float = 90_000) -> None:
    """Click `option` in the list of the select box or multiselect whose input is `combo` (a locator).

    A rerun that lands while the list is open redraws the widget and closes the list: the option
    found is detached before the click reaches it (seen in CI after 90 s of retrying on one closed
    list). So the list is opened again and the click retried, as a person would, and the failure
    says how often it was tried. A multiselect stays open after a choice: Escape closes it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, tries + 1):
        wait_idle(page, timeout)
        combo.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=timeout / tries)
            break
        except PlaywrightTimeout:
            print(f"choice {attempt} of {option!r}: the list closed before the click; opening it again")
            page.keyboard.press("Escape")
    else:
        raise AssertionError(f"{tries} tries to choose {option!r} found no option to click")
    if page.get_by_role("option").count():
        page.keyboard.press("Escape")
    wait_idle(page, timeout)

# The plotly charts a user sees. While a fragment reruns, Streamlit keeps the chart it replaces in the DOM
# for a moment (collapsed to 0 px, faded) next to the new one: counting it would read an older figure.
PLOTS_JS = ("[...document.querySelectorAll('.js-plotly-plot')]"
            ".filter(el => el.getBoundingClientRect().height > 0)")

ERROR_BOXES_JS = """() => {
  const boxes = [...document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]')];
  const kind = (e) => e.dataset.testid === 'stException' ? 'exception: ' : 'st.error: ';
  return boxes.map(e => kind(e) + e.innerText.trim().slice(0, 2000));
}"""


def error_boxes(page) -> list[str]:
    """Texts of every exception box and st.error box on the page."""
    return page.evaluate(ERROR_BOXES_JS)


# The plotly figures on the page, as plotly.js holds them. Point counts come from `_fullData[i]._length`
# (what plotly drew), else from `data[i].x`: an array, a typed array, or the {dtype, bdata} base64 spec
# plotly.py 6 sends for numpy arrays. `max_step` is the largest customdata (the Scalars page puts each
# point's step there) or x.
PLOTLY_JS = """() => {
  const decode = (a) => {
    if (!a) return [];
    if (Array.isArray(a) || ArrayBuffer.isView(a)) return Array.from(a);
    if (a.bdata !== undefined) {
      const bin = atob(a.bdata), buf = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
      const T = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
                 u2: Uint16Array, i1: Int8Array, u1: Uint8Array, u1c: Uint8ClampedArray}[a.dtype];
      return T ? Array.from(new T(buf.buffer)) : [];
    }
    return [];
  };
  return PLOTS.map(el => {
    const full = el._fullData || [];
    const raw = el.layout && el.layout.title ? (el.layout.title.text || el.layout.title) : null;
    const title = typeof raw === 'string' ? raw.replace(/<[^>]*>/g, '') : null;  // Streamlit adds <b>
    const traces = (el.data || []).map((t, i) => {
      const f = full.find(ft => ft.index === i) || full[i] || {};
      const xs = decode(f.x && (Array.isArray(f.x) || ArrayBuffer.isView(f.x)) ? f.x : t.x);
      const steps = decode(t.customdata && !Array.isArray(t.customdata[0]) ? t.customdata : null);
      const nums = (steps.length ? steps : xs).filter(v => typeof v === 'number' && isFinite(v));
      return {name: t.name || null, type: t.type || 'scatter',
              n: typeof f._length === 'number' ? f._length : xs.length,
              max_step: nums.length ? Math.max(...nums) : null};
    });
    return {title: title, traces: traces, drawn: !!el._fullLayout};
  });
}""".replace("PLOTS", PLOTS_JS)


def plotly_figures(page) -> list[dict]:
    """[{title, traces: [{name, type, n, max_step}], drawn}] for every plotly chart shown on the page."""
    return page.evaluate(PLOTLY_JS)


def kill_spawned(logdir: Path) -> list[int]:
    """SIGKILL every process whose environment carries TWINBOARD_LOGDIR=<logdir> (launcher supervisors,
    trainers and their children inherit it from the server); the pids killed."""
    from tests import stub_trainer

    return stub_trainer.kill_spawned(Path(logdir))


def leftover_processes(logdir: Path) -> list[str]:
    """`pid cmdline` of live processes still carrying TWINBOARD_LOGDIR=<logdir>."""
    from tests.stub_trainer import spawned_under

    out = []
    for pid in spawned_under(Path(logdir)):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append(f"{pid} {cmd.strip()[:200]}")
    return out

