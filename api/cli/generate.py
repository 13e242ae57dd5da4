"""``roamledger generate``: the workload generator (synthetic OCPI months) lives in :mod:`benchmarks`."""

from __future__ import annotations

import argparse

from pricing import generate as workload


def add_parser(sub: argparse._SubParsersAction) -> None:
    workload.add_parser(sub)


def run(args: argparse.Namespace) -> int:
    return int(args.func(args))
