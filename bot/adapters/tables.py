"""The one reader of clerks' tables (.csv, .xlsx): the roster and the incident figures both read files through it.

It knows bytes and formats, not what the columns mean: `read_table` returns the first sheet's rows (cells as strings
for a CSV, Excel values for a workbook), `read_sheets` every sheet by name and the text encoding a CSV was read in
(UTF-8, with or without BOM, else GB18030: what Excel's plain "CSV" is on a Chinese Windows). Both fail with a
`TableError` whose `key` the caller turns into its own message.
The limits are the same for every caller: the file's size, the columns read per row, and the rows read (a
caller says how many non-blank rows it can use; reading stops one past that).

An .xlsx is a zip archive, and a 170 kB one can hold 170 MB of shared strings that openpyxl keeps in memory
(issue 12 item 5). So openpyxl never opens the file it was sent: `_unpacked` looks at the archive first (member
count, declared sizes, compression ratio, encryption, compression method, duplicate names), then copies each
member through a reader that stops at the member's declared size, counting XML tags, into a fresh archive that
openpyxl reads. A
header that lies about a size cannot make anything inflate past it, and a file over the limits is refused with
`TableError("xlsx_unsafe")` before any XML is parsed.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from bot.textnorm import clean

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
MAX_COLUMNS = 64  # a sheet formatted out to column XFD would otherwise yield 16 384 cells per row
EXCEL_ROWS = 1_048_576  # the most rows a sheet has: a row number past it is a damaged or forged file
SUFFIXES = (".csv", ".xlsx", ".xlsm")
# What an .xlsx may hold once unpacked. A roster of a few thousand rows is about 1 MB of XML, 20 000 rows of
# incident figures about 5 MB; a shared-strings part is read into memory whole, so it has a limit of its own.
MAX_MEMBERS = 500
MAX_UNPACKED = 50 * 1024 * 1024
MAX_SHARED_STRINGS = 16 * 1024 * 1024
MAX_RATIO = 200  # unpacked : packed, looked at for members over RATIO_FLOOR; Excel's own parts are 5-30 : 1
RATIO_FLOOR = 1024 * 1024
# XML tags, counted while copying: openpyxl spends Python work on each element, so time follows their number, not
# the bytes (16 MB of one-letter shared strings took minutes). 20 000 rows of 30 cells are some 2.4 million tags;
# a shared string is four or more, and every one is kept in memory: about 250 000 strings.
MAX_TAGS = 4_000_000
MAX_SHARED_TAGS = 1_000_000
_XML = (".xml", ".rels", ".vml")
_CHUNK = 64 * 1024


# The text encodings a CSV is read in, as `TableFile.encoding` names them.
UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
GB18030 = "gb18030"  # a superset of GBK and GB2312
UTF16 = "utf-16"  # Excel's "Unicode 文本" (tab-separated), renamed to .csv
# C0 control characters other than tab, CR and LF: a "CSV" holding them decoded as GB18030 is not text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TableError(ValueError):
    """A table that cannot be read. `key` is one of: xls_old, bad_suffix (values: suffix), too_big (mb),
    not_text (a CSV that is neither UTF-8 nor GB18030 text), csv_broken (error), xlsx_open (the workbook does not open), xlsx_read (its rows fail),
    xlsx_unsafe (name, detail: too big once unpacked, or a strange archive; detail is English, for the log)."""

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


@dataclass(frozen=True)
class Sheet:
    """One worksheet's rows, from row 1 on (a blank row is an empty sequence, so a row's index + 1 is the row
    number Excel shows)."""

    name: str  # the worksheet's name; "" for a CSV
    rows: list[Sequence[object]]
    hidden: bool = False
    # Merged cells as (first row, first column, last row, last column), 1-based like Excel: only the first cell
    # of a merged range holds the value that Excel shows across all of it.
    merged: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True)
class TableFile:
    sheets: list[Sheet]  # a CSV is one sheet; a workbook's in its tab order
    encoding: str = ""  # a CSV's text encoding: UTF8, UTF8_BOM, GB18030 or UTF16; "" for a workbook


def read_table(
    name: str,
    data: bytes,
    *,
    max_filled: int,
    max_rows: int | None = None,
    cell: Callable[[object], object] | None = None,
) -> list[Sequence[object]]:
    """The rows of a .csv (UTF-8, BOM, UTF-16 or GB18030, as `decode_text` reads it) or the first sheet of an .xlsx;
    stops after `max_filled` non-blank rows or `max_rows` rows.

    `cell` turns an openpyxl cell into the value kept (default: its value), e.g. to look at its number format.
    """
    suffix = check_kind(name)
    check_size(len(data))
    if suffix == ".csv":
        text, _ = decode_text(data)  # Excel's plain "CSV" on a Chinese Windows is GBK
        return _csv_rows(text, _delimiter(text), max_filled, max_rows or len(data) + 1)
    sheets = _xlsx_sheets(
        _unpacked(name, data), max_filled, min(max_rows or EXCEL_ROWS, EXCEL_ROWS), cell or _value, first_only=True
    )
    return sheets[0].rows if sheets else []


def read_sheets(
    name: str,
    data: bytes,
    *,
    max_filled: int,
    max_rows: int | None = None,
    cell: Callable[[object], object] | None = None,
) -> TableFile:
    """Every sheet of an .xlsx, or a .csv in whichever of UTF-8 (with or without BOM), UTF-16 (with BOM) or
    GB18030 it decodes in; each sheet stops after `max_filled` non-blank rows or `max_rows` rows."""
    suffix = check_kind(name)
    check_size(len(data))
    if suffix == ".csv":
        text, encoding = decode_text(data)
        rows = _csv_rows(text, _delimiter(text), max_filled, max_rows or len(data) + 1)
        return TableFile([Sheet("", rows)], encoding)
    sheets = _xlsx_sheets(
        _unpacked(name, data), max_filled, min(max_rows or EXCEL_ROWS, EXCEL_ROWS), cell or _value, first_only=False
    )
    return TableFile(sheets)


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a CSV and the encoding it was read in; TableError("not_text") if it is none of them.

    Strict UTF-8 first: GB18030 decodes most UTF-8 Chinese too, into nonsense, while GB18030 text is almost never
    valid UTF-8. A "GB18030" text holding control characters is binary that happened to decode."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = [(UTF8_BOM, "utf-8-sig")]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = [(UTF16, "utf-16")]
    else:
        candidates = [(UTF8, "utf-8"), (GB18030, "gb18030")]
    for label, codec in candidates:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if label == GB18030 and _CONTROL.search(text):
            break
        return text, label
    raise TableError("not_text")


def _delimiter(text: str) -> str:
    """A comma, unless the first lines have none but tabs (Excel's "文本文件（制表符分隔）") or semicolons."""
    head = [line for line in text[: 64 * 1024].splitlines()[:20] if line.strip()]
    for mark in (",", "\t", ";"):
        if any(mark in line for line in head):
            return mark
    return ","


def _unpacked(name: str, data: bytes) -> io.BytesIO:
    """The workbook re-packed from members read through a bounded reader; TableError("xlsx_unsafe") if the
    archive is over the limits or strange, TableError("xlsx_open") if it is no zip at all."""

    def unsafe(detail: str) -> TableError:
        log.warning("refused the workbook %r: %s", name, detail)
        return TableError("xlsx_unsafe", name=PurePath(name).name, detail=detail)

    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        # NotImplementedError: a member that says it needs a newer zip version than Python reads ("zip file
        # version 6.4"), found by tests/adapters/test_hardening_parsers.py
        raise TableError("xlsx_open") from None
    with source:
        members = source.infolist()
        if len(members) > MAX_MEMBERS:
            raise unsafe(f"{len(members)} members (at most {MAX_MEMBERS})")
        if len({m.filename for m in members}) != len(members):
            raise unsafe("two members with one name")  # zip readers differ in which one they take
        total = 0
        for m in members:
            if m.flag_bits & 0x1:
                raise unsafe(f"{m.filename} is encrypted")
            if m.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                # bzip2 and lzma members are inflated in one piece by zipfile, with no bound
                raise unsafe(f"{m.filename} uses compression method {m.compress_type}")
            total += m.file_size
            if total > MAX_UNPACKED:
                raise unsafe(f"more than {MAX_UNPACKED} bytes unpacked")
            if m.filename.lower().endswith("sharedstrings.xml") and m.file_size > MAX_SHARED_STRINGS:
                raise unsafe(f"{m.filename} is {m.file_size} bytes unpacked (at most {MAX_SHARED_STRINGS})")
            if m.file_size > RATIO_FLOOR and m.file_size > MAX_RATIO * max(m.compress_size, 1):
                raise unsafe(f"{m.filename} packs {m.file_size} bytes into {m.compress_size}")
        packed = io.BytesIO()
        tags = 0
        try:
            with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
                for m in members:
                    most = MAX_TAGS - tags
                    if m.filename.lower().endswith("sharedstrings.xml"):
                        most = min(most, MAX_SHARED_TAGS)
                    tags += _copy_member(source, m, target, most_tags=most)
        except _TooManyTags as exc:
            raise unsafe(str(exc)) from None
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            EOFError,
            OSError,
            ValueError,
            RuntimeError,
            zlib.error,
        ) as exc:
            # A CRC that does not match (also what a member holding more than it declares comes to), a local
            # header that contradicts the directory, a truncated member: a damaged file.
            log.warning("the workbook %r does not unpack: %s", name, exc)
            raise TableError("xlsx_open") from None
    packed.seek(0)
    return packed


class _TooManyTags(ValueError):
    pass


def _copy_member(source: zipfile.ZipFile, member: zipfile.ZipInfo, target: zipfile.ZipFile, *, most_tags: int) -> int:
    """Copy one member a chunk at a time: zipfile's reader inflates at most a chunk per read and stops at the
    declared size, so a member that holds more than it declares is cut there (and then fails its CRC).
    Returns the XML tags counted (`<` in an XML part); _TooManyTags past `most_tags`."""
    copy = zipfile.ZipInfo(member.filename, date_time=member.date_time)
    copy.compress_type = zipfile.ZIP_DEFLATED
    done = tags = 0
    xml = member.filename.lower().endswith(_XML)
    with source.open(member) as src, target.open(copy, "w") as dst:
        while chunk := src.read(_CHUNK):
            done += len(chunk)
            if done > member.file_size:  # zipfile stops at the declared size; this is belt and braces
                raise ValueError(f"{member.filename} holds more than it declares")
            if xml:
                tags += chunk.count(b"<")
                if tags > most_tags:
                    raise _TooManyTags(f"{member.filename} has more than {most_tags} XML tags")
            dst.write(chunk)
    return tags


def _value(cell) -> object:
    return cell.value


def _csv_rows(text: str, delimiter: str, max_filled: int, max_rows: int) -> list[Sequence[object]]:
    table: list[Sequence[object]] = []
    count = 0
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            table.append(row)
            count += any(filled(c) for c in row)
            if count >= max_filled or len(table) >= max_rows:
                break
    except csv.Error as exc:
        raise TableError("csv_broken", error=exc) from None
    return table


def _xlsx_sheets(
    data: io.BytesIO, max_filled: int, max_rows: int, cell: Callable[[object], object], *, first_only: bool
) -> list[Sheet]:
    from openpyxl import load_workbook  # imported here: only reading a workbook needs it

    try:
        wb = load_workbook(data, read_only=True, data_only=True)
    except Exception:  # openpyxl fails with many types (zip, XML, KeyError) on a broken or foreign file
        raise TableError("xlsx_open") from None
    sheets: list[Sheet] = []
    try:
        for ws in wb.worksheets[:1] if first_only else wb.worksheets:
            rows = _xlsx_rows(ws, max_filled, max_rows, cell)
            merged = () if first_only else _merged_ranges(ws)
            hidden = getattr(ws, "sheet_state", "visible") != "visible"
            sheets.append(Sheet(str(ws.title), rows, hidden=hidden, merged=merged))
    except Exception:
        raise TableError("xlsx_read") from None
    finally:
        wb.close()
    return sheets


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]{1,3})([0-9]{1,7})(?::([A-Z]{1,3})([0-9]{1,7}))?"')
MAX_MERGES = 10_000


def _merged_ranges(ws) -> tuple[tuple[int, int, int, int], ...]:
    """The merged ranges a read-only sheet's XML lists (openpyxl's read-only mode does not read them), at most
    MAX_MERGES; the XML is scanned a chunk at a time, as it was already copied under the archive's limits."""
    found: list[tuple[int, int, int, int]] = []
    tail = b""
    with ws._get_source() as src:
        while chunk := src.read(_CHUNK):
            text = tail + chunk
            for m in _MERGE.finditer(text):
                first_col, first_row = _column_number(m.group(1)), int(m.group(2))
                last_col = _column_number(m.group(3)) if m.group(3) else first_col
                last_row = int(m.group(4)) if m.group(4) else first_row
                found.append((first_row, first_col, last_row, last_col))
                if len(found) >= MAX_MERGES:
                    return tuple(found)
            # A tag cut by the chunk's end is matched again with the next chunk; one already matched is not.
            cut = text.rfind(b"<")
            tail = text[cut:] if cut >= 0 and b">" not in text[cut:] else b""
    return tuple(found)


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - ord("A") + 1
    return number


def _xlsx_rows(ws, max_filled: int, max_rows: int, cell: Callable[[object], object]) -> list[Sequence[object]]:
    table: list[Sequence[object]] = []
    count = 0
    # A damaged sheet may only fail while its rows are read.
    # openpyxl fills the rows missing before a row number with one shared empty tuple: passing those over
    # unread keeps a 1 kB file naming row 1 048 576 (or 99 999 999) from costing seconds and gigabytes.
    missing: object = None
    for row in ws.iter_rows(max_col=MAX_COLUMNS, max_row=max_rows):
        if row is missing:
            table.append(())  # one shared empty tuple: a million missing rows cost next to nothing
            if len(table) >= max_rows:
                break
            continue
        values = [cell(c) for c in row]
        if not any(filled(v) for v in values):
            missing = row
            values = []  # a blank row keeps its place, not the 64 empty cells it was padded to
        table.append(values)
        count += any(filled(v) for v in values)
        if count >= max_filled or len(table) >= max_rows:
            break
    return table
