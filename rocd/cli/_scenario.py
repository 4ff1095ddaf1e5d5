"""`rocd scenario`: run a scenario file (several instances on this machine, steps,
faults, audio checks) and get a verdict, or only check that the file is valid.

    rocd scenario check scenarios/tone.toml
    rocd scenario run scenarios/tone.toml [--keep] [--out DIR]

Exit statuses of `run`: 0 passed, 1 failed (an expectation did not hold), 2 invalid file
or flags, 3 error (could not set up or carry out a step), 4 skipped (a required tool is
missing), 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

import trio

from rocd.scenario import EXIT, ScenarioError, load, run_scenario

from ._exit import EXIT_OK, EXIT_USAGE
from ._pipe import say


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("scenario", help="run a multi-instance scenario file, get a verdict")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    check = verbs.add_parser("check", help="validate scenario files without running them")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(run=run_check)
    run = verbs.add_parser("run", help="run a scenario file")
    run.add_argument("file", type=Path, metavar="FILE")
    run.add_argument(
        "--keep",
        action="store_true",
        help="keep the run directory (state dirs, logs, recordings); processes and "
        "namespaces are stopped all the same",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("scenario-reports"),
        metavar="DIR",
        help="where the JSON report and JUnit XML go (default: ./scenario-reports)",
    )
    run.set_defaults(run=run_run)


def run_check(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for file in args.files:
        try:
            scenario = load(file)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            status = EXIT_USAGE
            continue
        nodes, steps = len(scenario.nodes), len(scenario.steps)
        say(f"{file}: ok ({nodes} node{'s' * (nodes != 1)}, {steps} step{'s' * (steps != 1)})")
    return status


def run_run(args: argparse.Namespace) -> int:
    try:
        scenario = load(args.file)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    # Where the reports go is checked first: a run's reports are its point.
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        if not os.access(args.out, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        print(
            f"rocd scenario: cannot write the reports in {args.out}: {exc.strerror}",
            file=sys.stderr,
        )
        return EXIT["error"]
    report = trio.run(lambda: run_scenario(scenario, args.file, keep=args.keep))
    say(f"\n{report.table()}")
    try:
        json_path, xml_path = report.write(args.out)
    except OSError as exc:
        print(
            f"rocd scenario: cannot write the reports in {args.out}: {exc.strerror}",
            file=sys.stderr,
        )
        return EXIT["error"]
    say(f"reports: {json_path} {xml_path}")
    return report.exit_code
