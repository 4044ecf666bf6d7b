"""``SandboxProcess``: run ``zooflow sandbox serve`` as a child process for tests, demo and benchmarks.

The sandbox runs in its own process (and process group) so the code under test meets it only over
HTTP, as it would meet Panoptes, and so ``stop()`` can end it and anything it started. ``restart()``
keeps the data dir and the port, which is how tests check that nothing is lost across a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from zooflow.errors import ZooflowError
from zooflow.sandbox.admin import SandboxAdmin

READY_PREFIX = "zooflow sandbox ready: "
STOP_TIMEOUT_SECONDS = 15


class SandboxStartError(ZooflowError):
    """The sandbox process exited or stayed silent instead of announcing it was ready."""


class SandboxProcess:
    def __init__(self, data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0, seed: str | None = "demo",
                 settings: dict[str, Any] | None = None, log_path: str | Path | None = None):
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.seed = seed
        self.settings = dict(settings or {})
        self.log_path = Path(log_path) if log_path else self.data_dir / "sandbox.log"
        self.endpoint: str | None = None
        self.admin: SandboxAdmin | None = None
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "zooflow", "sandbox", "serve", "--host", self.host, "--port", str(self.port),
                   "--data-dir", str(self.data_dir)]
        if self.seed:
            command += ["--seed", self.seed]
        for name, value in self.settings.items():
            command += ["--set", f"{name}={json.dumps(value)}"]
        return command

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30) -> SandboxProcess:
        if self.running:
            raise SandboxStartError(f"the sandbox for {self.data_dir} is already running at {self.endpoint}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        line = self._ready_line(timeout)
        url = line[len(READY_PREFIX):].strip()
        self.port = int(url.rsplit(":", 1)[1])
        self.endpoint = url.replace("://0.0.0.0:", "://127.0.0.1:")
        self.admin = SandboxAdmin(self.endpoint)
        return self

    def _ready_line(self, timeout: float) -> str:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self._process.stdout.readline().decode()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = lines[0] if lines else ""
        if line.startswith(READY_PREFIX):
            return line
        self.stop()
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:] if self.log_path.exists() else []
        reason = "did not get ready within %gs" % timeout if not lines else "exited before it was ready"
        raise SandboxStartError(f"sandbox {reason}; last log lines:\n" + "\n".join(tail))

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers; returns when all of it is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                continue
        process.wait()
        process.stdout.close()

    def restart(self, timeout: float = 30) -> SandboxProcess:
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> SandboxProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
