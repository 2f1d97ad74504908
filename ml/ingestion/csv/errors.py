"""What a CSV file that cannot be loaded raises (a `UserError`: one line, exit code 2)."""

from __future__ import annotations

from ml.core.errors import UserError


class CsvError(UserError):
    """The file cannot be loaded as a CSV table as it is (missing, binary, ragged, empty...)."""


class EmptyCsvError(CsvError):
    """The file has no data rows: it is empty, blank, or a header alone."""
