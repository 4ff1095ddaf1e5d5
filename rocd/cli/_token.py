"""`rocd token`: the HTTP API's bearer tokens, made, listed and revoked on the state file.

    rocd token create --role operator [--name NAME]   prints the token (shown only now)
    rocd token list                                   id, role, name, created
    rocd token revoke ID

Works whether or not the daemon runs (it reads the same state file; a running daemon
stops accepting a revoked token within a few seconds). Exit status: 0 done, 1 the state
file cannot be used or no such token, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rocd.actors import (
    ROLES,
    CreateToken,
    DeleteToken,
    ListTokens,
    StateDB,
    StateError,
)
from rocd.config import ConfigError, load_config, with_overrides

from ._exit import EXIT_FAILED, EXIT_OK, EXIT_USAGE

STATE_FILE = "state.db"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="HTTP API tokens: create, list, revoke")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--config", metavar="FILE", help="TOML configuration file")
    where.add_argument(
        "--state-dir", metavar="DIR", help="state directory (default: the user's data dir)"
    )
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[where], help="make a token (printed once)")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", default="", help="what it is for")
    actions.add_parser("list", parents=[where], help="list the tokens (never their secrets)")
    revoke = actions.add_parser("revoke", parents=[where], help="revoke a token")
    revoke.add_argument("id", help="the token's id (see list)")
    token.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = with_overrides(
            load_config(Path(args.config) if args.config else None), state_dir=args.state_dir
        )
    except ConfigError as exc:
        print(f"rocd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = config.state_path / STATE_FILE
    fresh = not path.exists()
    if fresh and args.action != "create":  # a mistyped --state-dir is not a new one
        print(
            f"rocd: no state file in {config.state_path} (no daemon has used it)", file=sys.stderr
        )
        return EXIT_FAILED
    try:
        db = StateDB(path)
    except (StateError, OSError) as exc:
        print(f"rocd: state file unusable: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.action == "create":
            made = CreateToken(args.role, args.name).apply(db)
            print(made.token)
            print(f"token {made.id} ({made.role}) made; it is shown only now", file=sys.stderr)
            if fresh:
                print(f"rocd: note: {path} is new (no daemon has used it yet)", file=sys.stderr)
        elif args.action == "list":
            for token in ListTokens().apply(db):
                created = time.strftime("%Y-%m-%d %H:%M", time.localtime(token.created))
                print(f"{token.id}  {token.role:<8}  {created}  {token.name}")
        elif not DeleteToken(args.id).apply(db):
            print(f"rocd: no token {args.id!r}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        db.close()
    return EXIT_OK
