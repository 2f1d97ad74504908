"""What every command-line entry point shares: an argument parser and an error boundary.

User-caused errors (bad arguments, bad files, a locked warehouse) end in one clear line on stderr
and exit code 2, never a traceback. A bug still shows its traceback: that is for us to fix.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ml.core.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`prog: error: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _whole_number(text, 0)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


MAX_SEED = 2**32 - 1


def seed(text: str) -> int:
    """argparse type: a random seed, 0 to 2**32 - 1 (what numpy and scikit-learn accept)."""
    value = _whole_number(text, 0)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED}, got {value}")
    return value


_LINE_BREAKS = re.compile(r"\s*[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*")


def one_line(message: object) -> str:
    """`message` as a single line: line breaks (in a path, a column name) become spaces."""
    text = _LINE_BREAKS.sub(" ", str(message)).strip()
    return text or type(message).__name__


def run(
    main: Callable[[Sequence[str] | None], int], prog: str, argv: Sequence[str] | None = None
) -> NoReturn:
    """Call `main(argv)` and exit with its code; turn a `UserError` into one line and exit 2.

    Running out of memory is reported the same way (exit 2): it is the input's size that the
    user can change.
    """
    try:
        code = main(argv)
    except UserError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        code = err.exit_code
    except MemoryError:
        print(
            f"{prog}: error: out of memory: the input is too large for this machine",
            file=sys.stderr,
        )
        code = 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)
