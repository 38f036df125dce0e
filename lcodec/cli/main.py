"""The `codec` command: parses arguments and hands over to one small subcommand."""
from __future__ import annotations

import argparse
import sys

from lcodec.cli import decode, encode, eval_cmd, info, list_cmd, mpq, train
from lcodec.cli._common import fail
from lcodec.errors import LcodecError

__all__ = ["main", "entry"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codec", description="lcodec: learned data codecs")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (encode, decode, info, list_cmd, eval_cmd, mpq, train):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LcodecError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")


def entry() -> None:
    sys.exit(main())
