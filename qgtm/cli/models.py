"""`qgtm models list | show`: the model registry's versions, stages and artifacts."""

from __future__ import annotations

import argparse
from pathlib import Path

from qgtm.cli import CliError
from qgtm.cli.config import load


def run(args: argparse.Namespace) -> int:
    """List model versions or show one."""
    _, data_dir = load(args)
    return _models(args, data_dir)


def _models(args: argparse.Namespace, data_dir: Path) -> int:
    from qgtm.engine.audit import AuditLog
    from qgtm.engine.learn.registry import ModelRegistry
    from qgtm.engine.state import StateStore

    if not (data_dir / "state.sqlite").exists():
        raise CliError(f"no model registry in {data_dir} yet: run the engine first")
    state = StateStore(data_dir)
    try:
        registry = ModelRegistry(state.conn, AuditLog(state.conn), data_dir / "artifacts")
        if args.models_command == "list":
            for m in registry.list(args.strategy):
                window = f"{m.train_start}..{m.train_end}" if m.train_start else "defaults"
                print(f"{m.model_id:<22} {m.stage.value:<10} {m.created_session}  {window}")
            return 0
        try:
            model = registry.get(args.model_id)
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from None
        print(f"{model.model_id}  stage {model.stage.value}  created {model.created_session}")
        print(f"  params   {model.params}")
        print(f"  metrics  {model.metrics}")
        print(f"  data     {model.data_hash or '-'}  artifact {model.artifact_sha256[:16]}")
        print(f"  artifact intact: {registry.verify_artifact(model)}")
    finally:
        state.close()
    return 0
