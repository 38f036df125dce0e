"""The `codec` command: parses arguments and hands over to one small subcommand."""
from __future__ import annotations

import argparse
import os
import sys

from lcodec.cli import dataset_cmd, decode, encode, eval_cmd, info, list_cmd, mpq, train
from lcodec.cli._common import fail
from lcodec.errors import LcodecError

__all__ = ["main", "entry"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codec", description="lcodec: learned data codecs")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (encode, decode, dataset_cmd, info, list_cmd, eval_cmd, mpq, train):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that left shows here, not in the interpreter's flush at exit
        return code
    except LcodecError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
    except BrokenPipeError:
        return _reader_left()


def _reader_left() -> int:
    """The reader of our output went away (``codec list --json | head -1``): stop quietly, as a
    tool killed by SIGPIPE does. Later writes, including the flush at exit, go to /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # the shell's status for a process ended by SIGPIPE


def entry() -> None:
    sys.exit(main())
