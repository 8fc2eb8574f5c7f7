"""Start the real playground (``python app.py``) as a subprocess on a free loopback port, for what
drives it from outside: the live tests (``gradio_client``, a browser) and the app benchmarks.

    with running_app() as app:           # waits until GET / answers 200
        Client(app.url)...
        app.log()                        # its stdout + stderr so far
    app.final_log                        # everything it printed, once stopped

The app's output goes to a file (a pipe nobody reads could fill up and block the server), read
back with ``log()``; ``log_size()`` + ``log(since=...)`` give what one request printed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3          # a free port can be taken between our probe and the app's bind: retry
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # loopback only: never via a proxy


class AppStartError(RuntimeError):
    """The app exited or did not answer in time; the message carries its output."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class LiveApp:
    """A running ``app.py`` process: its base URL and its log."""

    def __init__(self, args: Sequence[str] = (), port: int | None = None, env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}/"
        self.final_log: str | None = None
        self._log_file = tempfile.NamedTemporaryFile(prefix="cosmos-app-", suffix=".log", delete=False)
        self.log_path = Path(self._log_file.name)
        full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
        full_env.pop("GRADIO_SERVER_NAME", None)
        full_env.pop("GRADIO_SERVER_PORT", None)
        self.process = subprocess.Popen(
            [sys.executable, "app.py", "--host", HOST, "--port", str(self.port), *args],
            cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log(self, since: int = 0) -> str:
        """What the app printed (stdout and stderr, interleaved), from byte offset ``since``."""
        with open(self.log_path, "rb") as handle:
            handle.seek(since)
            return handle.read().decode("utf-8", "replace")

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Poll GET / until it answers 200; raise AppStartError (with the log) if the app exits or times out."""
        deadline = time.monotonic() + timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise AppStartError(f"app.py exited with code {code} before serving {self.url}; its output:\n"
                                    f"{self.log()}")
            try:
                with _OPENER.open(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
                    last_problem = f"GET / answered {response.status}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
                last_problem = f"GET / failed: {err}"
            time.sleep(0.2)  # polling interval of a wait-for-condition loop, not a fixed wait
        log = self.stop()
        raise AppStartError(f"app.py did not serve {self.url} within {timeout:.0f} s ({last_problem}); its "
                            f"output:\n{log}")

    def stop(self) -> str:
        """Terminate (then kill, if it lingers) the app; returns everything it printed."""
        if self.final_log is not None:
            return self.final_log
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log_file.close()
        self.final_log = self.log()
        self.log_path.unlink(missing_ok=True)
        return self.final_log


def start_app(args: Sequence[str] = (), timeout: float = START_TIMEOUT_S,
              env: dict[str, str] | None = None) -> LiveApp:
    """Start ``app.py`` on a free port and wait until it serves; retries if the port was taken meanwhile."""
    for attempt in range(PORT_ATTEMPTS):
        app = LiveApp(args, env=env)
        try:
            app.wait_ready(timeout)
            return app
        except AppStartError as err:
            app.stop()
            port_taken = "address already in use" in str(err).lower() or "empty port" in str(err).lower()
            if not port_taken or attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_app(args: Sequence[str] = (), timeout: float = START_TIMEOUT_S,
                env: dict[str, str] | None = None) -> Iterator[LiveApp]:
    """The app, started and serving, for the duration of the block; stopped afterwards (``final_log``)."""
    app = start_app(args, timeout, env)
    try:
        yield app
    finally:
        app.stop()
