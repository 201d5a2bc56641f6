"""`qgtm serve`: the same terminal in a browser, through textual-serve.

Each browser tab starts `python -m qgtm.cli` (the terminal) in a subprocess and streams it
over a websocket. Only loopback by default: anyone who can open the page controls the
engine, so another host needs `--public`, and a warning is printed.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PUBLIC_WARNING = (
    "WARNING: serving the QGTM terminal on {host}:{port}. Anyone who can reach this "
    "address gets FULL CONTROL of the engine (pause, flatten, kill-switch actions). "
    "Put it behind an authenticating proxy or use SSH port forwarding instead."
)


class PublicBindRefusedError(ValueError):
    """A non-loopback host was asked for without --public."""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, public: bool) -> str | None:
    """None if `host` may be used; the warning to print if it is public and allowed.

    Raises PublicBindRefusedError for a non-loopback host without `public`.
    """
    if is_loopback(host):
        return None
    if not public:
        raise PublicBindRefusedError(
            f"refusing to serve on {host}: it is not a loopback address and anyone reaching "
            "it would control the engine; add --public if you really mean it"
        )
    return PUBLIC_WARNING


def terminal_command(data_dir: Path | None, config: Path | None) -> str:
    """The shell command textual-serve runs for each browser session."""
    argv = [sys.executable, "-m", "qgtm.cli"]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    if config is not None:
        argv += ["--config", str(config)]
    return shlex.join(argv)


def serve(host: str, port: int, public: bool, data_dir: Path | None, config: Path | None) -> None:
    """Serve the terminal until interrupted."""
    from textual_serve.server import Server

    warning = check_host(host, public)
    if warning:
        print(warning.format(host=host, port=port), file=sys.stderr)
    print(f"QGTM terminal at http://{host}:{port}/ (Ctrl+C stops)", file=sys.stderr)
    Server(terminal_command(data_dir, config), host=host, port=port, title="QGTM").serve()
