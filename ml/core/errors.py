"""Typed errors a user can cause. CLIs turn them into one clear line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: a bad argument, a bad file, a missing table or column."""

    exit_code = 2


class WarehouseLockedError(UserError):
    """Another process holds the DuckDB file (DuckDB allows one writing process at a time)."""


class RelationNotFoundError(UserError):
    """The named table or view does not exist in the warehouse."""
