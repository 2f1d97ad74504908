"""Files written whole or not at all, and their hashes.

Every file the project writes for people or for later steps (model bundles, CSV output, report
pages, their figures) goes to a temporary file beside its destination and is renamed over it, so
a reader, or a run killed half-way, sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ml.core.errors import UserError


def atomic_write(
    path: str | Path,
    write: Callable[[IO], object] | bytes | str,
    *,
    text: bool | None = None,
    permissions: int | None = None,
) -> Path:
    """Write `path` atomically: `write(fh)` fills a temporary file beside it (or `write` is the
    bytes or text itself), which is then renamed over `path`.

    The file gets `permissions`, else keeps the permissions of the file it replaces (a new one gets
    the umask's). A
    symlink is followed (the file it points to is replaced, not the link). A path that exists
    but is not a regular file (`/dev/stdout`, a named pipe) cannot be replaced and is written to
    directly. A failure becomes a `UserError` naming the path; the destination is left as it was.
    """
    if text is None:
        text = isinstance(write, str)
    mode = "w" if text else "wb"
    options = {"encoding": "utf-8", "newline": ""} if text else {}
    target = Path(path)
    try:
        target = target.resolve()
        if target.exists() and not target.is_file():
            with open(target, mode, **options) as fh:
                _fill(fh, write)
            return target
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, mode, **options) as fh:
            _fill(fh, write)
            os.fchmod(fh.fileno(), _mode_of(target) if permissions is None else permissions)
        os.replace(tmp, target)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _mode_of(target: Path) -> int:
    """The permissions the file gets: the replaced file's, else what `open` would give it
    (the temporary file starts private)."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask sets it
    process-wide, which other threads could see for a moment)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fill(fh: IO, write: Callable[[IO], object] | bytes | str) -> None:
    if callable(write):
        write(fh)
    else:
        fh.write(write)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
