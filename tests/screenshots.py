"""`python -m tests.screenshots DEST` (`make screenshots`): a PNG of every page, from a real run, into DEST.

Trains a tiny real pair (`python -m twinboard launch --steps 60 --wait`, with histograms every 10 steps
and embeddings at steps 20, 40 and the end) into a temporary logdir, imports its event files as an
upload (so the Upload page has one to show), serves the app, and saves each page at 1400 px wide, full
height, as DEST/<page>.png: launch, scalars, histograms, embeddings, graphs, parity, upload. Each shot
waits until the page's charts are drawn. Needs /usr/bin/chromium (Debian's; never a downloaded one).
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tests.browser import harness

LAUNCH = ["--steps", "60", "--log-every", "2", "--histogram-every", "10", "--embedding-steps", "20", "40",
          "--export", "--name", "demo-digits-mlp-sgd"]  # --export: the Deploy page has artifacts to show
UPLOAD_NAME = "colleague-run"
TIMEOUT_MS = 300_000  # one page's charts on a busy 2-core machine
# What each page must show before its picture is taken: (at least this many plotly charts holding
# data, at least this many graphviz charts with nodes, a CSS selector that must be visible).
READY = {
    "Launch": (0, 0, "[data-testid='stProgress']"),
    "Scalars": (5, 0, None),
    "Histograms": (4, 0, None),
    "Images": (0, 0, "[data-testid='stImage'] img"),
    "Embeddings": (3, 0, None),
    "Graphs": (2, 0, None),  # the two graphs are plotly charts
    "Parity": (1, 0, None),
    "Speed": (0, 0, "[data-testid='stDataFrame']"),
    "Deploy": (0, 0, "[data-testid='stDataFrame']"),
    "Sweeps": (0, 0, None),
    "Upload": (0, 0, "[data-testid='stDataFrame']"),
}
READY_JS = """([charts, graphs]) => {
  const plots = PLOTS;
  const withData = plots.filter(el => (el._fullData || []).some(t => (t._length || 0) > 0));
  const svgs = [...document.querySelectorAll('[data-testid="stGraphVizChart"] svg')]
      .filter(svg => svg.querySelector('g.node'));
  return withData.length >= charts && withData.length === plots.length && svgs.length >= graphs;
}""".replace("PLOTS", harness.PLOTS_JS)
# Streamlit scrolls inside its main block, so a "full page" shot of the window is one screen; the
# window is made as tall as the content instead.
CONTENT_HEIGHT_JS = """() => Math.max(...['stMain', 'stAppViewContainer', 'stSidebarContent']
  .map(id => document.querySelector(`[data-testid="${id}"]`)).filter(Boolean).map(el => el.scrollHeight))"""


def _train(logdir: Path) -> str:
    env = {**os.environ, "TWINBOARD_LOGDIR": str(logdir)}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "twinboard", "launch", *LAUNCH, "--wait", "--timeout", "600"],
                         cwd=harness.REPO, env=env, capture_output=True, text=True, timeout=660)
    if out.returncode != 0:
        raise SystemExit(f"the demo pair did not finish (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    run_dir = Path(out.stdout.splitlines()[0].strip())
    print(f"trained {run_dir.name} in {time.monotonic() - t0:.0f} s")
    return run_dir.name


def _import_upload(logdir: Path, run_id: str) -> None:
    """The run's own event files, zipped as a colleague would send them, imported as an upload."""
    from twinboard import uploads

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for fw in ("torch", "tensorflow"):
            for path in sorted((logdir / run_id / fw).glob("events.out.tfevents.*")):
                zf.write(path, f"{fw}/{path.name}")
    uploads.import_upload([(f"{UPLOAD_NAME}.zip", buf.getvalue())], UPLOAD_NAME, logdir)


def _pick_pair(page, title: str, run_id: str) -> None:
    """Show the demo run (not the upload, which sorts first) in the page's pair picker, if it has one."""
    combo = page.locator("[data-testid='stSidebar'] input[role='combobox'][aria-label='Matched pair']")
    if combo.count() == 0 or combo.input_value() == run_id:
        return
    harness.choose_option(page, combo, run_id, timeout=TIMEOUT_MS)
    page.wait_for_function("([sel, v]) => document.querySelector(sel).value === v",
                           arg=["[data-testid='stSidebar'] input[aria-label='Matched pair']", run_id])


def _shoot(page, server, title: str, run_id: str, dest: Path) -> Path:
    page.set_viewport_size(harness.VIEWPORT)
    harness.open_page(page, server, title, timeout=TIMEOUT_MS)
    _pick_pair(page, title, run_id)
    charts, graphs, selector = READY[title]
    page.wait_for_function(READY_JS, arg=[charts, graphs], timeout=TIMEOUT_MS)
    if selector:
        page.locator(selector).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    harness.wait_idle(page, TIMEOUT_MS)
    errors = harness.error_boxes(page)
    if errors:
        print(f"WARNING: the {title} page shows error boxes:\n" + "\n".join(errors))
    height = max(harness.VIEWPORT["height"], int(page.evaluate(CONTENT_HEIGHT_JS)) + 120)
    page.set_viewport_size({"width": harness.VIEWPORT["width"], "height": min(height, 8000)})
    page.wait_for_function(READY_JS, arg=[charts, graphs], timeout=TIMEOUT_MS)  # redrawn at the new size
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no focus ring in the picture
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    path = dest / f"{harness.PAGES[title] or 'launch'}.png"
    page.screenshot(path=str(path), full_page=True, timeout=TIMEOUT_MS, animations="disabled")
    return path


def main(argv: list[str]) -> int:
    dest = Path(argv[0] if argv else "docs").resolve()
    why = harness.chromium_missing()
    if why:
        print(f"cannot take screenshots: {why}", file=sys.stderr)
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="twinboard-shots-") as tmp:
        logdir = Path(tmp) / "logs"
        logdir.mkdir()
        server = None
        try:
            run_id = _train(logdir)
            _import_upload(logdir, run_id)
            # Viewer toolbar: no "Deploy" button in the pictures.
            server = harness.AppServer(logdir, Path(tmp) / "streamlit.log",
                                       args=("--client.toolbarMode", "viewer")).start()
            with sync_playwright() as pw:
                browser = harness.launch_browser(pw)
                page = browser.new_context(viewport=harness.VIEWPORT).new_page()
                for title in harness.PAGES:
                    if not harness.PAGE_FILES[title].exists():
                        print(f"skipped {title}: pages/{harness.PAGE_FILES[title].name} does not exist")
                        continue
                    t0 = time.monotonic()
                    path = _shoot(page, server, title, run_id, dest)
                    print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path} "
                          f"({time.monotonic() - t0:.0f} s)")
                browser.close()
        finally:
            if server is not None:
                server.stop()
            harness.kill_spawned(logdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
