"""The roster of units and liaisons: reading a clerk's spreadsheet, importing it all-or-nothing, listing it."""

from __future__ import annotations

import json
import re
from dataclasses import astuple, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bot.adapters import tables
from bot.content import load_texts
from bot.storage.models import (
    AuditLog,
    BotState,
    Confirmation,
    Group,
    GroupKind,
    Liaison,
    Membership,
    Role,
    Unit,
    UnitKind,
    pk,
)
from bot.textnorm import clean

COLUMNS = ("单位", "类别", "联络员", "微信ID", "微信昵称", "手机", "角色", "标签")
REQUIRED = ("单位", "联络员")
MAX_ROWS = 5000
HEADER_SEARCH = 10  # the header is looked for among this many non-blank rows (title rows above it are skipped)
MAX_LISTED = 20  # problems listed in one refusal; the rest are counted
# Rows read from a sheet, blank ones included: room for blank rows between the data, and a bound on what a sheet
# naming row 1 048 576 costs. A sheet that reaches it is refused as too long, never cut silently.
_TABLE_ROWS = 2 * MAX_ROWS + HEADER_SEARCH + 2
# The longest value each column may hold (the database's column sizes).
_MAX_LEN = {"单位": 100, "联络员": 50, "微信ID": 200, "微信昵称": 100, "手机": 30}

# Header words as clerks write them, after `_header_keys`: column -> words by preference. When two columns of a
# sheet mean one thing ("单位名称" and "部门"), the earlier word's column is read and the other is named as unread.
_SYNONYMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "单位": (
        ("单位", "单位名称"),
        ("所在单位", "工作单位", "所属单位", "单位部门", "单位/部门", "镇街/单位"),
        ("部门", "部门名称"),
    ),
    "类别": (("类别", "单位类别"), ("类型", "单位类型", "分类", "单位分类")),
    "联络员": (("联络员", "联络员姓名"), ("姓名", "联系人", "联系人姓名", "联络人", "反诈联络员"), ("名字",)),
    "微信ID": (("微信id", "wxid"), ("微信号", "微信账号", "微信帐号", "wechatid", "微信id号")),
    "微信昵称": (("微信昵称",), ("微信名", "昵称", "微信名称", "微信网名", "微信姓名"), ("群昵称",)),
    "手机": (("手机", "手机号", "手机号码"), ("联系电话", "电话", "联系方式", "电话号码", "移动电话")),
    "角色": (("角色",), ("主备", "主/备", "主备联络员", "联络员角色")),
    "标签": (("标签", "单位标签"), ("行业标签", "所属行业", "行业类别", "群体")),
}
_COLUMN_OF: dict[str, tuple[str, int]] = {
    word: (column, rank) for column, ranks in _SYNONYMS.items() for rank, words in enumerate(ranks) for word in words
}
# Columns clerks add that the bot does not need: skipped with a mention, not a warning.
_UNUSED = frozenset(
    ("序号", "编号", "no", "no.", "职务", "职位", "岗位", "备注", "说明", "性别", "邮箱", "电子邮箱", "qq")
    + ("办公电话", "座机", "固定电话", "身份证号", "身份证号码", "政治面貌", "科室", "所在科室")
)
_AMBIGUOUS = frozenset(("微信", "wechat", "微信信息"))
_ROSTER_COLUMNS = ("联络员", "微信ID", "微信昵称", "角色")  # what tells a roster header from other tables'

KINDS = {
    "镇街": UnitKind.TOWN,
    "镇": UnitKind.TOWN,
    "街道": UnitKind.TOWN,
    "镇(街)": UnitKind.TOWN,
    "镇(街道)": UnitKind.TOWN,
    "镇/街道": UnitKind.TOWN,
    "镇街道": UnitKind.TOWN,
    "街镇": UnitKind.TOWN,
    "乡镇": UnitKind.TOWN,
    "区直单位": UnitKind.DEPARTMENT,
    "区直": UnitKind.DEPARTMENT,
    "区直部门": UnitKind.DEPARTMENT,
    "区直机关": UnitKind.DEPARTMENT,
    "部门": UnitKind.DEPARTMENT,
    "行业": UnitKind.SECTOR,
    "行业单位": UnitKind.SECTOR,
    "其他": UnitKind.OTHER,
    "其它": UnitKind.OTHER,
}
_ROLES = {
    "主": Role.MAIN,
    "主要": Role.MAIN,
    "主联络员": Role.MAIN,
    "主要联络员": Role.MAIN,
    "main": Role.MAIN,
    "备": Role.BACKUP,
    "备用": Role.BACKUP,
    "备份": Role.BACKUP,
    "备联络员": Role.BACKUP,
    "备用联络员": Role.BACKUP,
    "backup": Role.BACKUP,
}
# Digits with the separators people put between numbers or parts of one: "0571-88888888", "138 0000 0001",
# "13800000001/13900000002", "0571-88888888转123".
_PHONE = re.compile(r"^\+?[0-9][0-9+\-\s()/、,;转]{3,29}$")
_SPACES = re.compile(r"\s+")
_CJK = r"\u2e80-\u9fff\uf900-\ufaff"
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】|〔[^〕]*〕|<[^>]*>|《[^》]*》")
_BRACKETS = re.compile(r"[()\[\]【】〔〕<>《》]")
_MARKS = re.compile(r"[*※:：]")


def _t(key: str, **values: object) -> str:
    return load_texts().t(f"roster_import.{key}", **values)


class RosterError(ValueError):
    """A roster file that cannot be imported; the message names the rows and columns, in Chinese.

    `problems` holds every problem found (a broken file or header: one), `notes` how the file was read."""

    def __init__(self, problems: str | list[str], notes: list[str] | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.notes = list(notes or [])
        super().__init__(self.text())

    def text(self, limit: int = MAX_LISTED) -> str:
        """One problem as it is; several as a numbered list of at most `limit`, with how many more there are."""
        if len(self.problems) == 1:
            return self.problems[0]
        lines = [_t("failed", count=len(self.problems))]
        lines += [f"{i}. {p}" for i, p in enumerate(self.problems[:limit], start=1)]
        if len(self.problems) > limit:
            lines.append(_t("more_problems", count=len(self.problems) - limit))
        lines.append(_t("fix_and_retry"))
        return "\n".join(lines)

    def failure(self, limit: int = MAX_LISTED) -> str:
        """The whole refusal: that nothing changed, and every problem (at most `limit` listed)."""
        if len(self.problems) == 1:
            return _t("failed_one", problem=self.problems[0])
        return self.text(limit)


@dataclass(frozen=True)
class RosterRow:
    line: int  # the row number the clerk sees in Excel
    unit: str
    kind: str
    name: str
    contact_id: str
    wechat_name: str
    phone: str
    role: str
    tags: str = ""  # 标签 as tag_text gives it ("学校、医院"); "" for none


@dataclass
class RosterRead:
    """A roster file read and checked: its rows, how it was read, and what the clerk should know."""

    rows: list[RosterRow]
    notes: list[str] = field(default_factory=list)  # how it was read: encoding, sheet, header row, columns
    warnings: list[str] = field(default_factory=list)  # the import goes ahead, but the clerk should look
    sheet: str = ""
    columns: frozenset[str] = frozenset(COLUMNS)  # the roster columns the file has


@dataclass
class ImportReport:
    added_units: list[str] = field(default_factory=list)
    added_liaisons: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated_units: list[str] = field(default_factory=list)
    removed_liaisons: list[str] = field(default_factory=list)
    unchanged: int = 0
    # Liaisons the bot cannot recognise after this import (no 微信ID, no 微信昵称, none learned): "单位-姓名（第 N 行）"
    unrecognisable: list[str] = field(default_factory=list)

    def lines(self, limit: int | None = None) -> list[str]:
        """A short Chinese summary, one line per kind of change; `limit` items per line at most."""
        out = []
        for label, items in (
            ("added_units", self.added_units),
            ("added_liaisons", self.added_liaisons),
            ("updated", self.updated),
            ("deactivated", self.deactivated_units),
            ("removed", self.removed_liaisons),
        ):
            if items:
                out.append(_t("change_list", label=_t(label), count=len(items), items=listed(items, limit)))
        out.append(_t("unchanged", count=self.unchanged) if out else _t("no_change", count=self.unchanged))
        return out

    def warning(self, limit: int | None = None) -> str:
        """The warning about liaisons no one can recognise, or ""."""
        if not self.unrecognisable:
            return ""
        return _t("unrecognisable", count=len(self.unrecognisable), items=listed(self.unrecognisable, limit))


def listed(items: list[str], limit: int | None = None) -> str:
    """Items joined with 、, the first `limit` of them and how many more."""
    if limit is None or len(items) <= limit:
        return "、".join(items)
    return "、".join(items[:limit]) + _t("and_more", count=len(items))


MAX_TAGS_LEN = 200  # Unit.tags
_TAG_SPLIT = re.compile(r"[\s,，、;；/|]+")


def tag_list(text: str) -> list[str]:
    """The tags in a 标签 cell or a 给 … target as people type them (`学校,医院`, `学校、 医院`, `学校 医院`),
    each once, in order."""
    return list(dict.fromkeys(t for t in _TAG_SPLIT.split(clean(text or "")) if t))


def tags_text(text: str) -> str:
    """A 标签 cell as stored: its tags joined by 、."""
    return "、".join(tag_list(text))


def kind_and_tags(kind: str, tags: str) -> str:
    """A unit's 类别 with its 标签, as the 单位 card, 名单 and the console show it: "区直单位 · 学校、医院"."""
    return f"{kind} · {tags}" if tags else kind


def tidy_name(text: str) -> str:
    """A name with its spaces as a person means them: none between Chinese characters ("王  芳" is 王芳), one
    elsewhere ("Li Ming", "+86 区反诈中心")."""
    return _SPACE_BY_CJK.sub("", _SPACES.sub(" ", text))


def name_key(text: str) -> str:
    """What two names must share to be one name: no whitespace at all."""
    return _SPACES.sub("", text)


def _header_keys(value: str) -> tuple[str, str]:
    """A header cell as matched: lower case, no spaces or marks; brackets dropped, then bracketed words dropped
    ("单位（部门）" is tried as 单位部门, then as 单位)."""
    text = _MARKS.sub("", _SPACES.sub("", clean(value).lower()))
    return _BRACKETS.sub("", text), _BRACKETS.sub("", _BRACKETED.sub("", text))


def column_of(value: str) -> tuple[str, int] | None:
    """The roster column a header cell names, with its preference rank; None if none."""
    for key in _header_keys(value):
        if key in _COLUMN_OF:
            return _COLUMN_OF[key]
    # "微信ID/微信号", "姓名、联系人": every part a word of one column
    parts = [p for p in re.split(r"[/、|,，]", _header_keys(value)[1]) if p]
    columns = {_COLUMN_OF[p][0] if p in _COLUMN_OF else None for p in parts}
    if len(parts) > 1 and len(columns) == 1 and None not in columns:
        return str(columns.pop()), max(_COLUMN_OF[p][1] for p in parts)
    return None


def _is_unused(value: str) -> bool:
    return any(key in _UNUSED for key in _header_keys(value))


def _is_ambiguous(value: str) -> bool:
    return any(key in _AMBIGUOUS for key in _header_keys(value))


def _letter(index: int) -> str:
    """The Excel column letter of a 0-based index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


_TABLE_KEYS = ("not_text", "csv_broken", "xlsx_open", "xlsx_read", "xlsx_unsafe", "xls_old", "too_big")


def _table_error(exc: tables.TableError) -> RosterError:
    values = dict(exc.values)
    if exc.key == "bad_suffix":
        values["suffix"] = values.get("suffix") or _t("no_suffix")
    key = exc.key if exc.key in (*_TABLE_KEYS, "bad_suffix") else "xlsx_read"
    return RosterError(_t(key, **values))


def read_roster_file(path: Path) -> list[RosterRow]:
    """Rows of a .csv or .xlsx roster; raises RosterError naming the row and column of every problem."""
    return read_roster_path(path).rows


def read_roster_path(path: Path, *, sheet: str | None = None) -> RosterRead:
    """A .csv or .xlsx roster on disk read and checked (see `read_roster`)."""
    try:
        if not path.is_file():
            raise RosterError(_t("file_missing", path=path))
        tables.check_kind(path.name)
        tables.check_size(path.stat().st_size)
    except tables.TableError as exc:
        raise _table_error(exc) from None
    return read_roster(path.name, path.read_bytes(), sheet=sheet)


def read_roster(name: str, data: bytes, *, sheet: str | None = None) -> RosterRead:
    """A roster file's rows, checked, with how it was read; `name` gives the type. An .xlsx is read from the sheet
    named, else the first sheet with a roster header. RosterError lists every problem found."""
    try:
        # One past the most rows parse_table accepts, plus the header and title rows, is enough to refuse more.
        read = tables.read_sheets(name, data, max_filled=MAX_ROWS + HEADER_SEARCH + 2, max_rows=_TABLE_ROWS)
    except tables.TableError as exc:
        raise _table_error(exc) from None
    return _read_sheets(read, sheet)


def is_roster(name: str, data: bytes) -> bool:
    """Does this table file hold a roster (a header with a 单位 column and a liaison column) on some sheet?
    Reads only the first rows of each sheet; False for a file that cannot be read."""
    try:
        read = tables.read_sheets(name, data, max_filled=HEADER_SEARCH, max_rows=20 * HEADER_SEARCH)
    except tables.TableError:
        return False
    for one in read.sheets:
        found = _find_header(_sheet_texts(one))
        if found is not None and any(c in found[1] for c in _ROSTER_COLUMNS):
            return True
    return False


def _texts(rows: list) -> list[list[str]]:
    return [[cell_text(v) for v in row] for row in rows]


_MAX_FILLED_CELLS = 200_000


def _sheet_texts(sheet: tables.Sheet) -> list[list[str]]:
    """A sheet's cells as text, a merged range's value in each of its cells: a 单位 merged down over its
    liaisons' rows names the unit of each row, as Excel shows it."""
    table = _texts(sheet.rows)
    budget = _MAX_FILLED_CELLS
    for first_row, first_col, last_row, last_col in sheet.merged:
        if first_row > len(table) or first_col > tables.MAX_COLUMNS:
            continue
        top = table[first_row - 1]
        value = top[first_col - 1] if first_col <= len(top) else ""
        if not clean(value):
            continue
        last_row, last_col = min(last_row, len(table)), min(last_col, tables.MAX_COLUMNS)
        # Every cell looked at counts, filled or not: ten thousand ranges over one sheet cost no more than this.
        budget -= max(0, last_row - first_row + 1) * max(0, last_col - first_col + 1)
        if budget < 0:
            break
        for r in range(first_row, last_row + 1):
            row = table[r - 1]
            if len(row) < last_col:
                row.extend([""] * (last_col - len(row)))
            for c in range(first_col, last_col + 1):
                if not row[c - 1]:
                    row[c - 1] = value
    return table


def _read_sheets(read: tables.TableFile, wanted: str | None) -> RosterRead:
    notes = [_t(f"encoding_{read.encoding}")] if read.encoding else []
    if not read.sheets:
        raise RosterError(_t("no_sheets"), notes)
    if wanted is not None and wanted.strip():
        if read.encoding:
            raise RosterError(_t("sheet_csv"), notes)
        key = name_key(clean(wanted))
        chosen = [s for s in read.sheets if name_key(clean(s.name)) == key]
        if not chosen:
            raise RosterError(_t("sheet_unknown", sheet=wanted, sheets="、".join(s.name for s in read.sheets)), notes)
        one = chosen[0]
        return _parse(_sheet_texts(one), notes + [_t("sheet_read", sheet=one.name)], sheet=one.name)
    if read.encoding:  # a CSV: its one table
        return _parse(_texts(read.sheets[0].rows), notes)
    tables_by_sheet = [(one, _sheet_texts(one)) for one in read.sheets]
    with_header = [(one, rows) for one, rows in tables_by_sheet if _find_header(rows) is not None]
    with_header.sort(key=lambda pair: pair[0].hidden)  # a visible sheet before a hidden one (an old list, say)
    if not with_header:
        if len(read.sheets) == 1:  # the header problem of the one sheet, with its row and cells
            one, rows = tables_by_sheet[0]
            return _parse(rows, notes + [_t("sheet_read", sheet=one.name)], sheet=one.name)
        names = "、".join(f"“{s.name}”" for s in read.sheets)
        raise RosterError(_t("no_header_sheets", sheets=names), notes)
    one, rows = with_header[0]
    first = read.sheets[0]
    if one is first:
        notes.append(_t("sheet_read", sheet=one.name))
    else:
        notes.append(_t("sheet_other", sheet=one.name, first=first.name))
    result = _parse(rows, notes, sheet=one.name)
    result.warnings += [_t("other_sheet", sheet=other.name) for other, _ in with_header[1:]]
    return result


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores phone numbers as 13800000000.0
    return str(value)


def parse_table(table: list[list[str]]) -> list[RosterRow]:
    """Validate a header row plus data rows; all problems are reported together as one RosterError."""
    return _parse(table, []).rows


def _find_header(table: list[list[str]]) -> tuple[int, dict[str, tuple[int, int]]] | None:
    """The header among the first non-blank rows: its 1-based row number and column -> (index, rank) of the
    columns it names, the most preferred word of each. A row with a 单位 column and another known one; else the
    first row naming two roster columns without a 单位 (so the clerk hears that 单位 is missing); else None."""
    seen = 0
    without_unit: tuple[int, dict[str, tuple[int, int]]] | None = None
    for line, raw in enumerate(table, start=1):
        if not any(clean(c) for c in raw):
            continue
        seen += 1
        if seen > HEADER_SEARCH:
            break
        columns: dict[str, tuple[int, int]] = {}
        others = 0
        for i, value in enumerate(raw):
            found = column_of(value)
            if found is not None:
                column, rank = found
                if column not in columns or rank < columns[column][1]:
                    columns[column] = (i, rank)
                others += column != "单位"
            elif _is_unused(value) or _is_ambiguous(value):
                others += 1
        if "单位" in columns and others:
            return line, columns
        if without_unit is None and sum(c in columns for c in _ROSTER_COLUMNS) >= 2:
            without_unit = line, columns
    return without_unit


def _parse(table: list[list[str]], notes: list[str], *, sheet: str = "") -> RosterRead:
    if len(table) >= _TABLE_ROWS:
        raise RosterError(_t("too_many_rows", max=MAX_ROWS), notes)
    found = _find_header(table)
    filled_rows = [(line, raw) for line, raw in enumerate(table, start=1) if any(clean(c) for c in raw)]
    if not filled_rows:
        raise RosterError(_t("empty", columns=_t("columns")), notes)
    if found is None:
        line, raw = filled_rows[0]
        cells = "、".join(dict.fromkeys(f"“{clean(c)}”" for c in raw if clean(c)))  # a merged title once
        raise RosterError(_t("no_header", rows=HEADER_SEARCH, line=line, cells=cells), notes)
    header_line, best = found
    header = table[header_line - 1]
    skipped = sum(1 for line, _ in filled_rows if line < header_line)
    if header_line != 1:
        notes.append(_t("header_line", line=header_line, skipped=skipped))
    warnings: list[str] = []
    problems: list[str] = []
    pos: dict[str, int] = {}
    label: dict[str, str] = {}  # the header as the clerk wrote it, for messages
    renamed, unused = [], []
    for i, value in enumerate(header):
        text = clean(value)
        found_column = column_of(value)
        if found_column is not None:
            column, rank = found_column
            best_index, best_rank = best[column]
            if i == best_index:
                pos[column], label[column] = i, text
                if name_key(text) != column:
                    renamed.append(f"{text}→{column}")
            elif rank == best_rank:
                first = clean(header[best_index])
                problems.append(
                    _t("duplicate_column", line=header_line, column=text)
                    if name_key(first) == name_key(text)
                    else _t("same_column", line=header_line, first=first, second=text, column=column)
                )
            else:
                warnings.append(_t("column_second", label=text, used=clean(header[best_index]), column=column))
        elif _is_ambiguous(value):
            problems.append(_t("ambiguous_column", line=header_line, label=text))
        elif _is_unused(value):
            unused.append(text)
        elif text:
            warnings.append(_t("column_unknown", label=text))
        elif any(i < len(raw) and clean(raw[i]) for line, raw in filled_rows if line > header_line):
            warnings.append(_t("column_unnamed", letter=_letter(i)))
    if renamed:
        notes.append(_t("renamed_columns", pairs="、".join(renamed)))
    if unused:
        notes.append(_t("unused_columns", columns="、".join(unused)))
    for column in REQUIRED:
        if column not in pos:
            words = "、".join(w for ranks in _SYNONYMS[column] for w in ranks if w != column)
            problems.insert(
                0, _t("missing_column", line=header_line, column=column, words=words, columns=_t("columns"))
            )
    if problems:
        raise RosterError(problems, notes)
    data = [(line, raw) for line, raw in filled_rows if line > header_line]
    if len(data) > MAX_ROWS:
        raise RosterError(_t("too_many_rows", max=MAX_ROWS), notes)
    if not data:
        raise RosterError(_t("no_rows"), notes)
    rows, row_warnings, tidied = _check_rows(data, pos, label, problems)
    if problems:
        raise RosterError(problems, notes)
    if tidied:
        notes.append(_t("names_tidied", items=listed(tidied, 10)))
    return RosterRead(rows, notes, warnings + row_warnings, sheet, frozenset(pos))


def _check_rows(
    data: list[tuple[int, list[str]]], pos: dict[str, int], label: dict[str, str], problems: list[str]
) -> tuple[list[RosterRow], list[str], list[str]]:
    """Every data row checked: the rows, the warnings, the names whose spaces were tidied. Problems are added to
    `problems` (all of them, row by row), so the clerk fixes them in one round."""
    rows: list[RosterRow] = []
    tidied: list[str] = []
    seen_person: dict[tuple[str, str], int] = {}
    seen_id: dict[str, tuple[int, str]] = {}
    kinds: dict[str, list[tuple[int, str]]] = {}  # unit -> (line, 类别 as written), the rows that gave one
    tags_given: dict[str, list[tuple[int, str]]] = {}  # unit -> (line, 标签) of its rows that give some (joined)
    units_of_id: dict[str, dict[str, int]] = {}  # contact id -> unit -> first line
    last_unit = ""
    for line, raw in data:

        def cell(column: str, raw: list[str] = raw) -> str:  # this row, bound when defined (B023)
            i = pos.get(column)
            # NUL means nothing in a cell, and PostgreSQL cannot store it: an import would fail at the database.
            return clean(raw[i].replace("\x00", "")) if i is not None and i < len(raw) else ""

        found = len(problems)
        unit_written, name_written = cell("单位"), cell("联络员")
        unit, name = tidy_name(unit_written), tidy_name(name_written)
        for text in (unit_written, name_written):
            if text != tidy_name(text):
                tidied.append(f"{text}→{tidy_name(text)}（第 {line} 行）")
        if not unit:
            key = "cell_empty_merged" if last_unit and name else "cell_empty"
            problems.append(_t(key, line=line, column=label["单位"]))
        if not name:
            problems.append(_t("cell_empty", line=line, column=label["联络员"]))
        last_unit = unit or last_unit
        values = {
            "单位": unit,
            "联络员": name,
            "微信ID": cell("微信ID"),
            "微信昵称": cell("微信昵称"),
            "手机": cell("手机"),
        }
        for column, most in _MAX_LEN.items():
            if len(values[column]) > most:
                problems.append(_t("too_long", line=line, column=label.get(column, column), max=most))
        kind_text = cell("类别")
        kind = KINDS.get(re.sub(r"\s+", "", kind_text)) if kind_text else UnitKind.OTHER
        if kind is None:
            problems.append(_t("bad_kind", line=line, column=label["类别"], text=kind_text))
        role_text = cell("角色")
        role = _ROLES.get(re.sub(r"\s+", "", role_text).lower()) if role_text else Role.MAIN
        if role is None:
            problems.append(_t("bad_role", line=line, column=label["角色"], text=role_text))
        phone = values["手机"]
        if phone and len(phone) <= _MAX_LEN["手机"] and not _PHONE.match(phone):
            problems.append(_t("bad_phone", line=line, column=label["手机"], text=phone))
        contact_id = values["微信ID"]
        if unit and name:
            person = (name_key(unit), name_key(name))
            if person in seen_person:
                problems.append(_t("duplicate_person", line=line, first=seen_person[person], unit=unit, name=name))
            seen_person.setdefault(person, line)
        if contact_id and name:
            first_line, first_name = seen_id.setdefault(contact_id, (line, name))
            if name_key(first_name) != name_key(name):
                problems.append(
                    _t(
                        "id_two_people",
                        line=line,
                        column=label["微信ID"],
                        first=first_line,
                        first_name=first_name,
                        name=name,
                    )
                )
            elif unit:
                units_of_id.setdefault(contact_id, {}).setdefault(unit, line)
        tag_text = tags_text(cell("标签"))
        if len(tag_text) > MAX_TAGS_LEN:
            problems.append(_t("too_long", line=line, column=label.get("标签", "标签"), max=MAX_TAGS_LEN))
        if len(problems) > found or kind is None or role is None:
            continue
        if kind_text:
            kinds.setdefault(unit, []).append((line, kind.value))
        if tag_text:
            tags_given.setdefault(unit, []).append((line, tag_text))
        rows.append(
            RosterRow(line, unit, kind.value, name, contact_id, values["微信昵称"], phone, role.value, tag_text)
        )

    warnings: list[str] = []
    # One kind per unit: the first row that gives one decides; rows with none take it too.
    unit_kind: dict[str, str] = {}
    for unit, given in kinds.items():
        unit_kind[unit] = given[0][1]
        if len({k for _, k in given}) > 1:
            items = "、".join(_t("item_line", what=k, line=line) for line, k in given)
            warnings.append(_t("kind_conflict", unit=unit, items=items, kind=given[0][1]))
    unit_tags: dict[str, str] = {}
    for unit, lines_tags in tags_given.items():
        unit_tags[unit] = tags_text("、".join(tags for _, tags in lines_tags))
        if len({frozenset(tag_list(tags)) for _, tags in lines_tags}) > 1:
            items = "、".join(_t("item_line", what=tags, line=line) for line, tags in lines_tags)
            warnings.append(_t("tags_conflict", unit=unit, items=items, tags=unit_tags[unit]))
    rows = [replace(r, kind=unit_kind.get(r.unit, r.kind), tags=unit_tags.get(r.unit, "")) for r in rows]
    for contact_id, units in units_of_id.items():
        if len(units) > 1:
            items = "、".join(_t("item_line", what=u, line=line) for u, line in units.items())
            warnings.append(_t("id_two_units", contact_id=contact_id, count=len(units), items=items))
    return rows, warnings, tidied


def import_roster(
    session: Session, rows: list[RosterRow], *, columns: frozenset[str] | None = None, apply: bool = True
) -> ImportReport:
    """Make the database match the rows; the caller commits (or rolls back on error).

    `apply=False` only reports what an import would change and touches nothing (a preview, or a change waiting
    for a confirmation). `columns`: the roster columns the file has (default all); what a column the file lacks
    says (类别, 微信昵称, 手机, 角色) is kept as it was for units and liaisons already known."""
    if columns is not None:
        rows = _keeping_absent(session, rows, columns)
    report = ImportReport()
    units = {name_key(u.name): u for u in session.exec(select(Unit))}
    liaisons: dict[tuple[object, str], Liaison] = {
        (liaison.unit_id, name_key(liaison.name)): liaison for liaison in session.exec(select(Liaison))
    }
    kept_units: set[str] = set()
    kept_liaisons: set[int] = set()  # id() of the liaison objects the rows keep or add

    for row in rows:
        unit_key = name_key(row.unit)
        unit = units.get(unit_key)
        if unit is None:
            unit = Unit(name=row.unit, kind=row.kind, tags=row.tags)
            if apply:
                session.add(unit)
                session.flush()
            units[unit_key] = unit
            report.added_units.append(row.unit)
        elif unit.kind != row.kind or not unit.active or unit.name != row.unit or unit.tags != row.tags:
            if unit_key not in kept_units:
                if unit.name != row.unit:
                    report.updated.append(_t("renamed", old=unit.name, new=row.unit))
                if not unit.active:
                    report.updated.append(_t("reactivated", unit=row.unit))
                elif unit.kind != row.kind:
                    report.updated.append(_t("changed_kind", unit=row.unit, old=unit.kind, new=row.kind))
                if unit.active and unit.tags != row.tags:
                    new = row.tags or _t("no_tags")
                    report.updated.append(_t("changed_tags", unit=row.unit, old=unit.tags or _t("no_tags"), new=new))
            if apply:
                unit.name, unit.kind, unit.active, unit.tags = row.unit, row.kind, True, row.tags
                session.add(unit)
        kept_units.add(unit_key)
        # A unit's id, or (not applying) its key: two new units' liaisons must not meet under one None.
        unit_ref: object = unit.id if unit.id is not None else f"new:{unit_key}"

        liaison = liaisons.get((unit_ref, name_key(row.name)))
        if liaison is None:
            liaison = Liaison(unit_id=unit.id or 0, name=row.name)
            report.added_liaisons.append(f"{row.unit}-{row.name}")
            known_id = ""
        else:
            changes = _liaison_changes(liaison, row)
            if changes:
                report.updated.append(f"{row.unit}-{row.name}（" + "，".join(changes) + "）")
            else:
                report.unchanged += 1
            known_id = liaison.contact_id or ""
        if apply:
            liaison.name = row.name
            liaison.role = row.role
            liaison.wechat_name = row.wechat_name
            liaison.phone = row.phone
            liaison.active = True
            if row.contact_id:
                liaison.contact_id = row.contact_id
            session.add(liaison)
            session.flush()
        liaisons[(unit_ref, name_key(row.name))] = liaison
        kept_liaisons.add(id(liaison))
        if not (row.contact_id or known_id or row.wechat_name or liaison.group_nickname):
            report.unrecognisable.append(_t("item_line", what=f"{row.unit}-{row.name}", line=row.line))

    for key, unit in units.items():
        if key not in kept_units and unit.active:
            if apply:
                unit.active = False
                session.add(unit)
            report.deactivated_units.append(unit.name)
    names = {u.id: u.name for u in units.values() if u.id is not None}
    for liaison in liaisons.values():
        if id(liaison) in kept_liaisons or not liaison.active:
            continue
        report.removed_liaisons.append(f"{names.get(liaison.unit_id, '?')}-{liaison.name}")
        if not apply:
            continue
        used = session.exec(select(Confirmation.id).where(Confirmation.liaison_id == liaison.id).limit(1)).first()
        if used is None:
            session.delete(liaison)
        else:
            # Kept for the record of past confirmations, but no longer recognised.
            liaison.active, liaison.contact_id = False, None
            session.add(liaison)
    return report


def _keeping_absent(session: Session, rows: list[RosterRow], columns: frozenset[str]) -> list[RosterRow]:
    """The rows with what the file's missing columns would say taken from the database."""
    missing = {"类别", "微信昵称", "手机", "角色", "标签"} - columns
    if not missing:
        return rows
    units = {name_key(u.name): u for u in session.exec(select(Unit))}
    liaisons = {(li.unit_id, name_key(li.name)): li for li in session.exec(select(Liaison))}
    kept = []
    for row in rows:
        unit = units.get(name_key(row.unit))
        liaison = liaisons.get((pk(unit), name_key(row.name))) if unit is not None else None
        if unit is not None and "类别" in missing:
            row = replace(row, kind=unit.kind)
        if unit is not None and "标签" in missing:
            row = replace(row, tags=unit.tags)
        if liaison is not None:
            row = replace(
                row,
                wechat_name=liaison.wechat_name if "微信昵称" in missing else row.wechat_name,
                phone=liaison.phone if "手机" in missing else row.phone,
                role=liaison.role if "角色" in missing else row.role,
            )
        kept.append(row)
    return kept


def _liaison_changes(liaison: Liaison, row: RosterRow) -> list[str]:
    changes = []
    if liaison.name != row.name:
        changes.append(f"姓名 {liaison.name}→{row.name}")
    if not liaison.active:
        changes.append("重新启用")
    if liaison.role != row.role:
        changes.append(f"角色 {liaison.role}→{row.role}")
    if liaison.wechat_name != row.wechat_name:
        changes.append(f"微信昵称 {liaison.wechat_name or '空'}→{row.wechat_name or '空'}")
    if liaison.phone != row.phone:
        changes.append("手机")
    if row.contact_id and liaison.contact_id != row.contact_id:
        changes.append("微信ID")
    return changes


@dataclass(frozen=True)
class RosterLine:
    unit: str
    kind: str
    liaison: str
    role: str
    wechat_name: str
    recognised: bool  # the bot knows their WeChat contact id
    in_group: bool  # and has seen that contact in a liaison group
    unit_id: int = 0
    liaison_id: int = 0
    contact_id: str = ""
    phone: str = ""
    bound_at: datetime | None = None
    tags: str = ""


def liaison_rooms(session: Session) -> list[str]:
    """The liaison groups' room ids."""
    return list(session.exec(select(Group.room_id).where(Group.kind == GroupKind.LIAISON.value)))


def roster_lines(session: Session, liaison_room_ids: list[str] | None = None) -> list[RosterLine]:
    """Every active liaison of an active unit, in roster order, with whether the bot knows their contact id and has
    seen them in a liaison group (`liaison_room_ids`, by default every liaison group): the CLI's `roster show`
    and the web console's 名单."""
    rooms = liaison_rooms(session) if liaison_room_ids is None else liaison_room_ids
    members = set()
    if rooms:
        member_stmt = select(Membership.contact_id).where(col(Membership.room_id).in_(rooms))
        members = set(session.exec(member_stmt))
    stmt = (
        select(Unit, Liaison)
        .join(Liaison, col(Liaison.unit_id) == col(Unit.id))
        .where(Unit.active == True, Liaison.active == True)  # noqa: E712
        .order_by(col(Unit.id), col(Liaison.role), col(Liaison.id))
    )
    return [
        RosterLine(
            unit.name,
            unit.kind,
            liaison.name,
            liaison.role,
            liaison.wechat_name,
            liaison.contact_id is not None,
            liaison.contact_id in members,
            unit_id=pk(unit),
            liaison_id=pk(liaison),
            contact_id=liaison.contact_id or "",
            phone=liaison.phone,
            bound_at=liaison.bound_at,
            tags=unit.tags,
        )
        for unit, liaison in session.exec(stmt)
    ]


def outcome_lines(read: RosterRead, report: ImportReport, *, preview: bool, limit: int | None = None) -> list[str]:
    """What an import (or its preview) tells the clerk: how the file was read, the changes, the warnings;
    `limit` items per list and warnings at most (a chat), None for all (the command line)."""
    lines = list(read.notes)
    lines.append(_t("preview" if preview else "imported", rows=len(read.rows)))
    lines += ["  " + line for line in report.lines(limit)]
    return lines + warning_lines(read, report, limit=limit)


def warning_lines(read: RosterRead, report: ImportReport, *, limit: int | None = None) -> list[str]:
    """The warnings of a read and import, under a heading; [] if there are none."""
    warnings = [*read.warnings, *([report.warning(limit)] if report.unrecognisable else [])]
    if not warnings:
        return []
    shown = warnings if limit is None else warnings[:limit]
    more = [_t("more_problems", count=len(warnings) - len(shown))] if len(shown) < len(warnings) else []
    return [_t("warnings"), *(f"  - {w}" for w in shown + more)]


def refusal_lines(read: RosterRead, report: ImportReport, *, limit: int | None = None) -> list[str]:
    """An import that would deactivate units, not applied: how the file was read, which units, every change."""
    lines = list(read.notes)
    lines.append(
        _t("confirm_needed", count=len(report.deactivated_units), units=listed(report.deactivated_units, limit))
    )
    lines += ["  " + line for line in report.lines(limit)]
    return lines + warning_lines(read, report, limit=limit)


def confirm_command_line(command: str) -> str:
    """How to confirm a refused import on the command line."""
    return _t("confirm_command", command=command)


# --- an import from chat waiting for the admin's 确认导入 ------------------------------------------------------

HELD_KEY = "roster_pending"  # BotState: which audit row holds the waiting import, who may confirm it, until when
HELD_ACTION = "roster_held"  # AuditLog: the file's checked rows, as JSON (the audit log's detail has no limit)
HOLD_MINUTES = 30


@dataclass(frozen=True)
class HeldImport:
    """A roster import from chat that would deactivate units, waiting for its sender to confirm."""

    read: RosterRead
    file_name: str
    by_id: str
    by_name: str
    until: datetime


def hold_import(
    session: Session, *, read: RosterRead, file_name: str, by_id: str, by_name: str, now: datetime
) -> datetime:
    """Keep a checked roster until its sender confirms (a row each: a restart keeps it); a newer one replaces
    it. Returns until when it waits."""
    until = now + timedelta(minutes=HOLD_MINUTES)
    payload = {
        "file": file_name,
        "rows": [list(astuple(row)) for row in read.rows],
        "notes": read.notes,
        "warnings": read.warnings,
        "sheet": read.sheet,
        "columns": sorted(read.columns),
    }
    row = AuditLog(
        at=now,
        actor_id=by_id,
        actor_name=by_name[:100],
        action=HELD_ACTION,
        detail=json.dumps(payload, ensure_ascii=False),
    )
    session.add(row)
    session.flush()
    state = session.get(BotState, HELD_KEY) or BotState(key=HELD_KEY)
    state.value = json.dumps({"audit": pk(row), "by": by_id, "until": until.isoformat()})
    state.updated_at = now
    session.add(state)
    return until


def drop_held_import(session: Session) -> None:
    """Forget the waiting import, if any (it was confirmed, expired, or a newer file came)."""
    state = session.get(BotState, HELD_KEY)
    if state is not None:
        session.delete(state)


def held_import(session: Session) -> HeldImport | None:
    """The import waiting for confirmation, expired or not; None if there is none (or its row is unreadable)."""
    state = session.get(BotState, HELD_KEY)
    if state is None:
        return None
    try:
        pointer = json.loads(state.value)
        row = session.get(AuditLog, int(pointer["audit"]))
        if row is None:
            return None
        payload = json.loads(row.detail)
        rows = [RosterRow(int(r[0]), *(str(v) for v in r[1:8])) for r in payload["rows"]]
        read = RosterRead(
            rows,
            [str(n) for n in payload["notes"]],
            [str(w) for w in payload["warnings"]],
            str(payload["sheet"]),
            frozenset(str(c) for c in payload["columns"]),
        )
        until = datetime.fromisoformat(pointer["until"])
        return HeldImport(read, str(payload["file"]), str(pointer["by"]), row.actor_name, until)
    except (ValueError, KeyError, TypeError):  # written by this module; a hand-edited row is not guessed at
        return None


# --- one liaison edited by hand (the web console's 名单 page) -------------------------------------------------


def _e(key: str, **values: object) -> str:
    return load_texts().t(f"roster_edit.{key}", **values)


def edit_liaison(
    session: Session,
    liaison_id: int,
    *,
    name: str,
    contact_id: str,
    wechat_name: str,
    phone: str,
    role: str,
) -> list[str]:
    """Change one active liaison's name, 微信ID, 微信昵称, 手机 and 主/备, checked as an import checks a row.

    Returns the changes made ("姓名 a→b", ...; [] if none); raises RosterError with every problem and changes
    nothing. An empty 微信ID forgets the one the bot knew. The caller audits and commits."""
    liaison = session.get(Liaison, liaison_id)
    if liaison is None or not liaison.active:
        raise RosterError(_e("no_liaison"))
    name, contact_id = tidy_name(clean(name)), clean(contact_id).strip()
    wechat_name, phone = clean(wechat_name).strip(), clean(phone).strip()
    problems = []
    if not name:
        problems.append(_e("name_empty"))
    for label, value, most in (
        ("联络员", name, _MAX_LEN["联络员"]),
        ("微信ID", contact_id, _MAX_LEN["微信ID"]),
        ("微信昵称", wechat_name, _MAX_LEN["微信昵称"]),
        ("手机", phone, _MAX_LEN["手机"]),
    ):
        if len(value) > most:
            problems.append(_e("too_long", column=label, max=most))
    chosen = _ROLES.get(re.sub(r"\s+", "", role).lower()) if role.strip() else Role.MAIN
    if chosen is None:
        problems.append(_e("bad_role", text=role))
    if phone and len(phone) <= _MAX_LEN["手机"] and not _PHONE.match(phone):
        problems.append(_e("bad_phone", text=phone))
    if name:
        for other in session.exec(
            select(Liaison).where(Liaison.unit_id == liaison.unit_id, Liaison.active == True)  # noqa: E712
        ):
            if other.id != liaison.id and name_key(other.name) == name_key(name):
                problems.append(_e("duplicate_person", name=name))
    if contact_id and name:
        for other in session.exec(
            select(Liaison).where(Liaison.contact_id == contact_id, Liaison.active == True)  # noqa: E712
        ):
            if other.id != liaison.id and name_key(other.name) != name_key(name):
                problems.append(_e("id_two_people", contact_id=contact_id, other=other.name))
    if problems:
        raise RosterError(problems)
    assert chosen is not None
    changes = []
    if liaison.name != name:
        changes.append(f"姓名 {liaison.name}→{name}")
    if liaison.role != chosen.value:
        changes.append(f"角色 {liaison.role}→{chosen.value}")
    if (liaison.contact_id or "") != contact_id:
        changes.append(f"微信ID {liaison.contact_id or '空'}→{contact_id or '空'}")
    if liaison.wechat_name != wechat_name:
        changes.append(f"微信昵称 {liaison.wechat_name or '空'}→{wechat_name or '空'}")
    if liaison.phone != phone:
        changes.append("手机")
    if (liaison.contact_id or "") != contact_id:
        liaison.bound_at = None  # a new 微信ID is not yet recognised in a group
    liaison.name, liaison.role, liaison.wechat_name, liaison.phone = name, chosen.value, wechat_name, phone
    liaison.contact_id = contact_id or None
    session.add(liaison)
    session.flush()
    return changes
