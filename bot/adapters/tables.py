"""The one reader of clerks' tables (.csv, .xlsx): the roster and the incident figures both read files through it.

It knows bytes and formats, not what the columns mean: it returns the first sheet's rows (cells as strings for a
CSV, Excel values for a workbook) and fails with a `TableError` whose `key` the caller turns into its own message.
The limits are the same for every caller: the file's size, the columns read per row, and the rows read (a
caller says how many non-blank rows it can use; reading stops one past that).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import PurePath

from bot.textnorm import clean

MAX_BYTES = 20 * 1024 * 1024
MAX_COLUMNS = 64  # a sheet formatted out to column XFD would otherwise yield 16 384 cells per row
EXCEL_ROWS = 1_048_576  # the most rows a sheet has: a row number past it is a damaged or forged file
SUFFIXES = (".csv", ".xlsx", ".xlsm")


class TableError(ValueError):
    """A table that cannot be read. `key` is one of: xls_old, bad_suffix (values: suffix), too_big (mb),
    not_utf8, csv_broken (error), xlsx_open (the workbook does not open), xlsx_read (its rows fail)."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def filled(value: object) -> bool:
    """Does a cell hold something (not None, not blank text)?"""
    return value is not None and (not isinstance(value, str) or clean(value) != "")


def check_kind(name: str) -> str:
    """The lower-case suffix of a table file's name; TableError if it is not one this reader reads."""
    suffix = PurePath(name).suffix.lower()
    if suffix == ".xls":
        raise TableError("xls_old")
    if suffix not in SUFFIXES:
        raise TableError("bad_suffix", suffix=suffix)
    return suffix


def check_size(size: int) -> None:
    """TableError("too_big") past MAX_BYTES."""
    if size > MAX_BYTES:
        raise TableError("too_big", mb=MAX_BYTES // (1024 * 1024))


def read_table(
    name: str,
    data: bytes,
    *,
    max_filled: int,
    max_rows: int | None = None,
    cell: Callable[[object], object] | None = None,
) -> list[Sequence[object]]:
    """The rows of a .csv or the first sheet of an .xlsx; stops after `max_filled` non-blank rows or `max_rows` rows.

    `cell` turns an openpyxl cell into the value kept (default: its value), e.g. to look at its number format.
    """
    suffix = check_kind(name)
    check_size(len(data))
    if suffix == ".csv":
        return _csv_table(data, max_filled, max_rows or len(data) + 1)
    return _xlsx_table(data, max_filled, min(max_rows or EXCEL_ROWS, EXCEL_ROWS), cell or _value)


def _value(cell) -> object:
    return cell.value


def _csv_table(data: bytes, max_filled: int, max_rows: int) -> list[Sequence[object]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TableError("not_utf8") from None
    table: list[Sequence[object]] = []
    count = 0
    try:
        for row in csv.reader(io.StringIO(text)):
            table.append(row)
            count += any(filled(c) for c in row)
            if count >= max_filled or len(table) >= max_rows:
                break
    except csv.Error as exc:
        raise TableError("csv_broken", error=exc) from None
    return table


def _xlsx_table(
    data: bytes, max_filled: int, max_rows: int, cell: Callable[[object], object]
) -> list[Sequence[object]]:
    from openpyxl import load_workbook  # imported here: only reading a workbook needs it

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl fails with many types (zip, XML, KeyError) on a broken or foreign file
        raise TableError("xlsx_open") from None
    table: list[Sequence[object]] = []
    count = 0
    try:
        if not wb.worksheets:
            return table
        # A damaged sheet may only fail while its rows are read.
        # openpyxl fills the rows missing before a row number with one shared empty tuple: passing those over
        # unread keeps a 1 kB file naming row 1 048 576 (or 99 999 999) from costing seconds and gigabytes.
        missing: object = None
        for row in wb.worksheets[0].iter_rows(max_col=MAX_COLUMNS, max_row=max_rows):
            if row is missing:
                table.append(())  # one shared empty tuple: a million missing rows cost next to nothing
                if len(table) >= max_rows:
                    break
                continue
            values = [cell(c) for c in row]
            if not any(filled(v) for v in values):
                missing = row
            table.append(values)
            count += any(filled(v) for v in values)
            if count >= max_filled or len(table) >= max_rows:
                break
    except Exception:
        raise TableError("xlsx_read") from None
    finally:
        wb.close()
    return table
