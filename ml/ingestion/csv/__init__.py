"""Land any tidy CSV as a warehouse table (`python -m scripts.load_csv FILE --table raw.NAME`).

    table, info = read_csv("data.csv")          # typed Arrow table; nothing written
    info = load_csv("data.csv", "raw.my_data")  # ... landed atomically in the warehouse
    print(summary(info))

What the loader decides, so that nothing about the result is a surprise, is documented by each
step's module: `encoding` (bytes: text or not, which encoding), `dialect` (delimiter, header
names), `inference` (the type of every column, over every row), `parsing` (reading the file in
DuckDB, line-numbered refusals: `read_csv`), `loading` (where a table may land: `load_csv`) and
`info` (what was found, and the summary).
"""

from ml.ingestion.csv.errors import CsvError, EmptyCsvError
from ml.ingestion.csv.info import Column, CsvInfo, summary
from ml.ingestion.csv.loading import IF_EXISTS, check_table_name, load_csv
from ml.ingestion.csv.parsing import read_csv

__all__ = [
    "IF_EXISTS",
    "Column",
    "CsvError",
    "CsvInfo",
    "EmptyCsvError",
    "check_table_name",
    "load_csv",
    "read_csv",
    "summary",
]
