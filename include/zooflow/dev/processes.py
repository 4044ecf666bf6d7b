"""Process groups on this machine: start one, stop it with everything it forked, find what is still alive.

Airflow's services, the sandbox, Celery workers and test databases all fork children, some of which
leave their parent's process group (Postgres backends, daemons calling setsid) or rewrite their
environment block (setproctitle). Whoever starts them must be able to stop all of it and prove
that nothing is left, so starting, signalling and the /proc scan live here once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zooflow.files import open_private

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 30


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Whether ``port`` on ``host`` cannot be bound (something listens there)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def spawn_in_group(command: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
                   **popen: Any) -> subprocess.Popen:
    """Start ``command`` as the leader of a new session (so of its own process group), output to ``log_path``.

    Its own group is what lets :func:`stop_process_groups` end it together with every child it
    forks; its own session detaches it from the caller's terminal. The log is private (0600):
    Airflow's api-server writes the admin password it generates there.
    """
    with open_private(log_path) as log_file:
        return subprocess.Popen(list(command), env=None if env is None else dict(env), stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **popen)


def signal_all(sig: signal.Signals, *, groups: Iterable[int] = (), pids: Iterable[int] = ()) -> None:
    """Send ``sig`` to each process group and each process; those already gone (or not ours) are skipped."""
    for send, ids in ((os.killpg, groups), (os.kill, pids)):
        for target in ids:
            try:
                send(target, sig)
            except (ProcessLookupError, PermissionError):
                pass


def stop_process_groups(processes: Iterable[subprocess.Popen], sig: signal.Signals = signal.SIGTERM,
                        grace: float = STOP_GRACE_SECONDS) -> None:
    """Send ``sig`` to each process's group, wait up to ``grace`` seconds for the leaders, then SIGKILL the groups.

    The SIGKILL also reaches children that outlived their leader (a Celery pool process, a
    Postgres backend), so nothing of a group keeps running afterwards.
    """
    processes = list(processes)
    signal_all(sig, groups=[process.pid for process in processes])
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
        signal_all(signal.SIGKILL, groups=[process.pid])
        process.wait()


@dataclass(frozen=True)
class ProcStat:
    """What /proc/<pid>/stat says about a process that matters for finding and stopping it."""

    state: str
    pgid: int
    session: int
    start_ticks: int  # with the pid, tells a process from a later one that reused the pid

    @property
    def alive(self) -> bool:
        return self.state not in "ZX"  # zombies and dead entries no longer run


def proc_stat(pid: int) -> ProcStat | None:
    """State, process group, session and start time of ``pid`` from /proc, or None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which may itself hold spaces and parentheses: state is field 3,
    # pgrp field 5, session field 6 and starttime field 22 of proc(5).
    fields = text[text.rindex(")") + 2:].split()
    return ProcStat(state=fields[0], pgid=int(fields[2]), session=int(fields[3]), start_ticks=int(fields[19]))


def live_processes(*, groups: Iterable[int] = (), sessions: Iterable[int] = (), markers: Iterable[str] = (),
                   environment: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(pid, command line) of each live process that belongs to what a caller started, in pid order.

    A process belongs when it is in one of ``groups`` or ``sessions``, names one of ``markers``
    (a substring) in its command line or environment, or has one of ``environment`` (whole
    ``KEY=value`` entries) in its environment. The last two find processes that left their group
    and session: they still carry the run's directories or variables. Zombies are not running and
    are left out; so is this process.
    """
    groups, sessions = set(groups), set(sessions)
    needles, entries = [m.encode() for m in markers if m], {e.encode() for e in environment}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        stat = proc_stat(int(entry.name))
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # ended while we looked
        if stat is None or not stat.alive:
            continue
        if stat.pgid not in groups and stat.session not in sessions:
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                environ = b""
            if not (any(n in command or n in environ for n in needles) or entries & set(environ.split(b"\0"))):
                continue
        found.append((int(entry.name), command.replace(b"\0", b" ").decode(errors="replace").strip()))
    return sorted(found)


def log_tail(path: str | Path, lines: int = 15) -> str:
    """The last lines of a process's log, for an error message."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
