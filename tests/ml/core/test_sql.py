"""ml.core.sql: which statements `scripts.query` lets through read-only."""

from __future__ import annotations

import pytest

from ml.core.sql import first_keyword, is_query, statements


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "  SELECT * FROM ml.model_runs;",
        "-- comment\nwith x as (select 1) select * from x",
        "/* a; b */ select ';' as semicolon, 'drop table x' as text",
        "(select 1) union all (select 2)",
        "values (1), (2)",
        "show tables",
        "describe marts.loan_features",
        "explain select 1",
        "with r as (select replace(purpose, '_', ' ') from raw.loans) select * from r",
        'select "update" from t',
    ],
)
def test_queries_pass(sql: str) -> None:
    assert is_query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "drop table ml.model_runs",
        "insert into t values (1)",
        "create table t as select 1",
        "with x as (select 1) insert into t select * from x",
        "from raw.loans insert into t select *",
        "explain analyze delete from t",
        "select 1; drop table t",
        "attach 'other.duckdb'",
        "update t set a = 1",
        "",
        "   ;  ",
    ],
)
def test_statements_that_write_or_are_not_one_query_are_refused(sql: str) -> None:
    assert not is_query(sql)


def test_first_keyword_and_statements_ignore_comments_and_strings() -> None:
    assert first_keyword("/* x */ -- y\n  Select 1") == "select"
    assert first_keyword("") == ""
    assert len(statements("select ';'; select 2;")) == 2
