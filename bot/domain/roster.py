"""The roster of units and liaisons: reading a clerk's spreadsheet, importing it all-or-nothing, listing it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from bot.adapters import tables
from bot.storage.models import Confirmation, Liaison, Membership, Role, Unit, UnitKind, pk
from bot.textnorm import clean

COLUMNS = ("单位", "类别", "联络员", "微信ID", "微信昵称", "手机", "角色")
REQUIRED = ("单位", "联络员")
MAX_ROWS = 5000

_KINDS = {
    "镇街": UnitKind.TOWN,
    "镇": UnitKind.TOWN,
    "街道": UnitKind.TOWN,
    "镇(街)": UnitKind.TOWN,
    "区直单位": UnitKind.DEPARTMENT,
    "区直": UnitKind.DEPARTMENT,
    "部门": UnitKind.DEPARTMENT,
    "行业": UnitKind.SECTOR,
    "其他": UnitKind.OTHER,
}
_ROLES = {
    "主": Role.MAIN,
    "主要": Role.MAIN,
    "主联络员": Role.MAIN,
    "main": Role.MAIN,
    "备": Role.BACKUP,
    "备用": Role.BACKUP,
    "备份": Role.BACKUP,
    "备联络员": Role.BACKUP,
    "backup": Role.BACKUP,
}
_PHONE = re.compile(r"^[0-9+\- ]{5,20}$")


class RosterError(ValueError):
    """A roster file that cannot be imported; the message names the row and column, in Chinese."""


@dataclass(frozen=True)
class RosterRow:
    line: int  # the row number the clerk sees in Excel (header is row 1)
    unit: str
    kind: str
    name: str
    contact_id: str
    wechat_name: str
    phone: str
    role: str


@dataclass
class ImportReport:
    added_units: list[str] = field(default_factory=list)
    added_liaisons: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated_units: list[str] = field(default_factory=list)
    removed_liaisons: list[str] = field(default_factory=list)
    unchanged: int = 0

    def lines(self) -> list[str]:
        """A short Chinese summary, one line per kind of change."""
        out = []
        for label, items in (
            ("新增单位", self.added_units),
            ("新增联络员", self.added_liaisons),
            ("更新", self.updated),
            ("停用单位（不在新名单中）", self.deactivated_units),
            ("移除联络员（不在新名单中）", self.removed_liaisons),
        ):
            if items:
                out.append(f"{label} {len(items)}：" + "、".join(items))
        out.append(f"未变 {self.unchanged} 人" if out else f"名单没有变化（{self.unchanged} 人）")
        return out


_TABLE_ERRORS = {
    "not_utf8": "CSV 文件不是 UTF-8 编码。请在 Excel 中“另存为”→“CSV UTF-8（逗号分隔）”，或直接导入 .xlsx。",
    "csv_broken": "CSV 文件格式有误：{error}",
    "xlsx_open": "无法打开这个 Excel 文件，它可能已损坏或不是 .xlsx 格式。",
    "xlsx_read": "无法读取这个 Excel 文件的内容，它可能已损坏。请在 Excel 中打开后“另存为” .xlsx 再导入。",
    "xlsx_unsafe": "“{name}”解压后过大或结构异常，没有导入。请在 Excel 中打开后“另存为”普通 .xlsx 再导入。",
    "xls_old": "不支持旧版 .xls 文件，请在 Excel 中“另存为” .xlsx 后再导入。",
    "bad_suffix": "不支持的文件类型“{suffix}”，请使用 .xlsx 或 .csv。",
    "too_big": "文件超过 {mb} MB，请检查文件。",
}


def read_roster_file(path: Path) -> list[RosterRow]:
    """Rows of a .csv or .xlsx roster; raises RosterError naming the row and column of the first problem."""
    try:
        if not path.is_file():
            raise RosterError(f"找不到文件：{path}")
        tables.check_kind(path.name)
        tables.check_size(path.stat().st_size)
        # One past the most rows parse_table accepts (plus the header) is enough to refuse a longer file.
        table = tables.read_table(path.name, path.read_bytes(), max_filled=MAX_ROWS + 2, max_rows=MAX_ROWS + 2)
    except tables.TableError as exc:
        values = dict(exc.values)
        if exc.key == "bad_suffix":
            values["suffix"] = values.get("suffix") or "无扩展名"
        raise RosterError(_TABLE_ERRORS[exc.key].format(**values)) from None
    return parse_table([[cell_text(v) for v in row] for row in table])


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores phone numbers as 13800000000.0
    return str(value)


def parse_table(table: list[list[str]]) -> list[RosterRow]:
    """Validate a header row plus data rows; all problems are reported as RosterError."""
    while table and not any(clean(c) for c in table[0]):
        table = table[1:]
    if not table:
        raise RosterError("文件是空的：第 1 行应为表头：" + "、".join(COLUMNS))
    header = [re.sub(r"\s+", "", clean(c)) for c in table[0]]
    for column in REQUIRED:
        if column not in header:
            raise RosterError(f"第 1 行（表头）缺少“{column}”列。表头应为：" + "、".join(COLUMNS))
    for column in COLUMNS:
        if header.count(column) > 1:
            raise RosterError(f"第 1 行（表头）“{column}”列出现了两次。")
    pos = {column: header.index(column) for column in COLUMNS if column in header}
    if len(table) - 1 > MAX_ROWS:
        raise RosterError(f"名单超过 {MAX_ROWS} 行，请检查文件。")

    rows: list[RosterRow] = []
    seen_person: dict[tuple[str, str], int] = {}
    seen_id: dict[str, tuple[int, str]] = {}
    for index, raw in enumerate(table[1:], start=2):

        def cell(column: str, raw: list[str] = raw) -> str:  # this row, bound when defined (B023)
            i = pos.get(column)
            # NUL means nothing in a cell, and PostgreSQL cannot store it: an import would fail at the database.
            return clean(raw[i].replace("\x00", "")) if i is not None and i < len(raw) else ""

        if not any(clean(c) for c in raw):
            continue
        unit, name = cell("单位"), cell("联络员")
        for column, value in (("单位", unit), ("联络员", name)):
            if not value:
                raise RosterError(f"第 {index} 行“{column}”为空，这一列必须填写。")
        if len(unit) > 100 or len(name) > 50:
            raise RosterError(f"第 {index} 行“{'单位' if len(unit) > 100 else '联络员'}”太长，请检查。")
        kind_text = cell("类别")
        kind = _KINDS.get(kind_text.replace("（", "(").replace("）", ")")) if kind_text else UnitKind.OTHER
        if kind is None:
            raise RosterError(f"第 {index} 行“类别”为“{kind_text}”，应为：镇街、区直单位、行业 或 其他。")
        role_text = cell("角色")
        role = _ROLES.get(role_text.lower()) if role_text else Role.MAIN
        if role is None:
            raise RosterError(f"第 {index} 行“角色”为“{role_text}”，应为“主”或“备”（不填即为主）。")
        phone = cell("手机")
        if phone and not _PHONE.match(phone):
            raise RosterError(f"第 {index} 行“手机”为“{phone}”，不是有效的电话号码。")
        contact_id = cell("微信ID")
        if (unit, name) in seen_person:
            raise RosterError(
                f"第 {index} 行与第 {seen_person[(unit, name)]} 行重复：{unit} 的联络员 {name} 出现了两次。"
            )
        seen_person[(unit, name)] = index
        if contact_id:
            first_line, first_name = seen_id.setdefault(contact_id, (index, name))
            if first_name != name:
                raise RosterError(f"第 {index} 行“微信ID”与第 {first_line} 行相同，但联络员不同。")
        rows.append(RosterRow(index, unit, kind.value, name, contact_id, cell("微信昵称"), phone, role.value))
    if not rows:
        raise RosterError("文件里没有联络员：表头下面没有数据行。")
    return rows


def import_roster(session: Session, rows: list[RosterRow]) -> ImportReport:
    """Make the database match the rows; the caller commits (or rolls back on error)."""
    report = ImportReport()
    units = {u.name: u for u in session.exec(select(Unit))}
    liaisons = {(liaison.unit_id, liaison.name): liaison for liaison in session.exec(select(Liaison))}
    kept_units: set[str] = set()
    kept_liaisons: set[int] = set()

    for row in rows:
        unit = units.get(row.unit)
        if unit is None:
            unit = Unit(name=row.unit, kind=row.kind)
            session.add(unit)
            session.flush()
            units[row.unit] = unit
            report.added_units.append(row.unit)
        elif unit.kind != row.kind or not unit.active:
            if row.unit not in kept_units:
                report.updated.append(
                    f"{row.unit}（类别 {unit.kind}→{row.kind}）" if unit.active else f"{row.unit}（重新启用）"
                )
            unit.kind, unit.active = row.kind, True
            session.add(unit)
        kept_units.add(row.unit)
        unit_id = pk(unit)  # read from the database, or added and flushed above

        liaison = liaisons.get((unit_id, row.name))
        if liaison is None:
            liaison = Liaison(unit_id=unit_id, name=row.name)
            report.added_liaisons.append(f"{row.unit}-{row.name}")
            changes = []
        else:
            changes = _liaison_changes(liaison, row)
            if changes:
                report.updated.append(f"{row.unit}-{row.name}（" + "，".join(changes) + "）")
            else:
                report.unchanged += 1
        liaison.role = row.role
        liaison.wechat_name = row.wechat_name
        liaison.phone = row.phone
        liaison.active = True
        if row.contact_id:
            liaison.contact_id = row.contact_id
        session.add(liaison)
        session.flush()
        liaisons[(unit_id, row.name)] = liaison
        kept_liaisons.add(pk(liaison))  # flushed just above

    for name, unit in units.items():
        if name not in kept_units and unit.active:
            unit.active = False
            session.add(unit)
            report.deactivated_units.append(name)
    names = {u.id: u.name for u in units.values()}
    for liaison in liaisons.values():
        if liaison.id not in kept_liaisons and liaison.active:
            used = session.exec(select(Confirmation.id).where(Confirmation.liaison_id == liaison.id).limit(1)).first()
            if used is None:
                session.delete(liaison)
            else:
                # Kept for the record of past confirmations, but no longer recognised.
                liaison.active, liaison.contact_id = False, None
                session.add(liaison)
            report.removed_liaisons.append(f"{names.get(liaison.unit_id, '?')}-{liaison.name}")
    return report


def _liaison_changes(liaison: Liaison, row: RosterRow) -> list[str]:
    changes = []
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
    recognised: bool
    in_group: bool


def roster_lines(session: Session, liaison_room_ids: list[str]) -> list[RosterLine]:
    """Every active liaison with whether the bot knows their contact id and has seen them in a liaison group."""
    members = set()
    if liaison_room_ids:
        member_stmt = select(Membership.contact_id).where(col(Membership.room_id).in_(liaison_room_ids))
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
        )
        for unit, liaison in session.exec(stmt)
    ]
