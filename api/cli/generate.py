"""``roamledger generate``: the workload generator (synthetic OCPI months) lives in
:mod:`benchmarks.workload`; this command only hands it the arguments."""

from __future__ import annotations

import argparse

from benchmarks.workload import cli as workload


def add_parser(sub: argparse._SubParsersAction) -> None:
    workload.add_parser(sub)


def run(args: argparse.Namespace) -> int:
    return int(workload.run(args))
