"""Headless Chromium for tests: the DOM of a page after its scripts ran, and a screenshot.

Used by tests/test_browser.py (the docs) and meant for any other page the project renders
(the HTML report). Needs Debian's ``chromium`` on PATH (or ``DLVERIFY_CHROMIUM`` naming the
binary); :func:`chromium` returns None when there is none, so a test can skip with a message.

Every launch gets a fresh profile directory and runs offline-minded: no first-run, sync,
component updates or background networking, and no QUIC. Pages under a directory are best
served with :func:`serve` (``file://`` pages may not load web fonts: Chromium applies CORS to
them).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
]


def chromium() -> str | None:
    """The Chromium binary to use, or None when none is installed."""
    named = os.environ.get("DLVERIFY_CHROMIUM")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url: str, extra: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium), or set DLVERIFY_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="dlverify-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode} on {url}:\n{proc.stderr[-3000:]}")
    return proc


def render_dom(url: str, *, settle_ms: int = 3000, timeout: float = 90) -> str:
    """The serialised DOM of ``url`` after its scripts ran.

    ``settle_ms`` of virtual time is granted after load, so timers and late scripts finish
    (virtual time advances as fast as the page allows, it is not a sleep).
    """
    proc = _run(url, [f"--virtual-time-budget={settle_ms}", "--dump-dom"], timeout)
    if "<html" not in proc.stdout.lower():
        raise RuntimeError(f"chromium printed no DOM for {url}:\n{proc.stderr[-3000:]}")
    return proc.stdout


def screenshot(url: str, path: str | Path, *, width: int = 1280, height: int = 1600, settle_ms: int = 3000,
               timeout: float = 90) -> Path:
    """Write a PNG of the first ``width`` x ``height`` CSS pixels of ``url`` to ``path``."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _run(url, [f"--virtual-time-budget={settle_ms}", f"--window-size={width},{height}", f"--screenshot={path}"],
         timeout)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {url} to {path}")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
