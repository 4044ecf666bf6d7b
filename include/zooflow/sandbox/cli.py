"""``zooflow sandbox serve``: run the sandbox in the foreground until SIGTERM or Ctrl-C.

Once it listens it prints exactly one line to stdout, ``zooflow sandbox ready: http://HOST:PORT``,
which is what ``SandboxProcess`` waits for; request logs go to stderr. Problems the user can fix (a
data dir that cannot be written, a port in use, a bad setting) stop it at once with one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import threading
from pathlib import Path

from zooflow.errors import ConfigurationError

# CLI flag -> (setting name, type); everything else goes through --set KEY=VALUE.
SETTING_FLAGS = {
    "--export-delay": ("export_delay", float),
    "--url-lifetime": ("url_lifetime", float),
    "--token-lifetime": ("token_lifetime", int),
    "--volunteer-rate": ("volunteer_rate", float),
    "--volunteer-error-rate": ("volunteer_error_rate", float),
    "--retire-after": ("retire_after", int),
    "--fault-rate": ("fault_rate", float),
    "--latency-ms": ("latency_ms", int),
    "--drop-download-after-bytes": ("drop_download_after_bytes", int),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from zooflow.sandbox.seed import SEEDS
    from zooflow.sandbox.settings import SETTINGS

    sandbox = subparsers.add_parser("sandbox", help="run the local Panoptes-compatible sandbox server")
    commands = sandbox.add_subparsers(dest="sandbox_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve", help="serve the sandbox until stopped",
        description="Serve a Panoptes-compatible API that the real panoptes-client can use, with state under DIR.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    serve.add_argument("--data-dir", required=True, type=Path, metavar="DIR", help="where state and files live")
    serve.add_argument("--seed", choices=sorted(SEEDS), help="create this starting state if missing")
    for flag, (name, kind) in SETTING_FLAGS.items():
        serve.add_argument(flag, dest=name, type=kind, help=SETTINGS[name].help)
    serve.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                       help=f"any setting, VALUE as JSON or text (repeatable): {', '.join(SETTINGS)}")
    serve.set_defaults(func=serve_command)


def _overrides(args: argparse.Namespace) -> dict:
    from zooflow.sandbox.settings import SettingsError, parse_assignment

    try:
        overrides = dict(parse_assignment(text) for text in args.assignments)
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    for name, _ in SETTING_FLAGS.values():
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return overrides


def _writable(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(f"data dir {data_dir} is not writable: {exc.strerror or exc}") from None


def serve_command(args: argparse.Namespace) -> int:
    from zooflow.sandbox.app import Sandbox
    from zooflow.sandbox.seed import SEEDS
    from zooflow.sandbox.server import SandboxServer
    from zooflow.sandbox.settings import SettingsError

    overrides = _overrides(args)
    _writable(args.data_dir)
    try:
        sandbox = Sandbox(args.data_dir, overrides)
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open the sandbox database in {args.data_dir}: {exc}") from None
    try:
        server = SandboxServer((args.host, args.port), sandbox)
    except OSError as exc:
        sandbox.db.close()
        raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    if args.seed:
        SEEDS[args.seed](sandbox)

    def stop(signum, frame) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sandbox.start()
    print(f"zooflow sandbox ready: http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sandbox.stop()
    return 0
