"""`qgtm risk status | request-reset | approve-reset | add-operator` with the engine
stopped: the kill switch's two-person reset and its operators."""

from __future__ import annotations

import argparse
from pathlib import Path

from qgtm.cli import CliError
from qgtm.cli.config import load
from qgtm.core.config import Config


def run(args: argparse.Namespace) -> int:
    """One risk action on the data dir's book."""
    config, data_dir = load(args)
    return _risk(args, config, data_dir)


def _risk(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    """Thin: prompts for the passphrase; the work is in qgtm.engine.risk.admin."""
    import getpass

    from qgtm.engine.risk.admin import RiskAdminError, offline_risk, status_lines
    from qgtm.engine.risk.operators import OperatorError

    action = args.risk_command
    passphrase = ""
    if action != "status":
        passphrase = getpass.getpass(f"passphrase for {args.operator}: ")
    if action == "add-operator" and getpass.getpass("again: ") != passphrase:
        raise CliError("the two passphrases differ; nothing was changed")
    try:
        with offline_risk(data_dir, config) as risk:
            if action == "status":
                print("\n".join(status_lines(risk)))
                return 0
            if action == "add-operator":
                risk.add_operator(args.operator, passphrase)
                print(f"operator {args.operator} added")
                return 0
            if action == "request-reset":
                result = risk.request_reset(args.operator, passphrase)
            else:
                result = risk.approve_reset(args.operator, passphrase)
    except (RiskAdminError, OperatorError) as exc:
        raise CliError(str(exc)) from None
    print(result.message)
    return 0 if result.ok else 1
