"""Files are written whole or not at all, with the permissions a plain write would give them."""

from __future__ import annotations

import os

import pytest

from ml.core.errors import UserError
from ml.core.files import atomic_write, sha256_file


def test_a_file_is_replaced_whole_and_keeps_its_permissions(tmp_path) -> None:
    path = tmp_path / "out.csv"
    atomic_write(path, "a,b\n")
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())
    os.chmod(path, 0o640)
    atomic_write(path, lambda fh: fh.write("c,d\n"), text=True)
    assert path.read_text() == "c,d\n" and os.stat(path).st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"old")

    def fail(fh) -> None:
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match="cannot write .*No space left"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_a_symlink_is_followed_and_a_missing_folder_refused(tmp_path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("x")
    (tmp_path / "link.txt").symlink_to(real)
    atomic_write(tmp_path / "link.txt", "y")
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() == "y"
    with pytest.raises(UserError, match="cannot write"):
        atomic_write(tmp_path / "no" / "such.txt", "z")
    assert len(sha256_file(real)) == 64


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_explicit_permissions_win_over_the_umask(tmp_path) -> None:
    previous = os.umask(0o077)
    try:
        path = atomic_write(tmp_path / "page.html", b"<html>", permissions=0o644)
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o644
