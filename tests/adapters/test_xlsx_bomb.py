"""Workbooks are looked at as zip archives before openpyxl parses them (issue 12 item 5).

A 170 kB .xlsx whose shared strings unpack to 170 MB froze the bot for 24 s and took it to 514 MB: openpyxl keeps
every shared string in memory. The archive's member count, declared sizes and compression ratio are checked first,
and members are copied through a reader that stops at their declared size, so a header that lies cannot make
anything inflate past it. A normal roster or incident workbook still reads.
"""

from __future__ import annotations

import io
import random
import string
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from datetime import date
from xml.sax.saxutils import escape

import pytest
from openpyxl import Workbook

from bot.adapters import tables
from bot.domain.incidents import StatsError, read_stats_bytes
from bot.domain.roster import RosterError, read_roster_file
from tests.conftest import EXAMPLE_ROSTER

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{SML}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SML}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SML}.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{REL}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">'
    f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
FIGURES = [
    ["镇街", "周期", "案件类型", "警情数"],
    ["城关镇", "2026-W47", "刷单返利", 5],
    ["西湖镇", "2026-W47", "冒充公检法", 2],
]
TODAY = date(2026, 11, 26)
MESSAGE = "解压后过大或结构异常"


def _parts(rows: list[list[object]]) -> tuple[str, bytes]:
    """A worksheet whose text cells are shared strings, and the shared-strings part's opening (no </sst>)."""
    strings: dict[str, int] = {}
    xml_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, int):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="s"><v>{strings.setdefault(str(value), len(strings))}</v></c>')
        xml_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    sheet = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>{"".join(xml_rows)}</sheetData></worksheet>'
    head = f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}">' + "".join(
        f"<si><t>{escape(s)}</t></si>" for s in strings
    )
    return sheet, head.encode()


def workbook(rows=FIGURES, *, padding: bytes = b"", repeat: int = 0) -> bytes:
    """A minimal .xlsx as Excel lays it out; its shared strings followed by `padding` * `repeat` (streamed into
    the archive, so building a bomb costs the test no memory)."""
    sheet, strings = _parts(rows)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        with z.open("xl/sharedStrings.xml", "w") as part:
            part.write(strings)
            per_block = max(1, min(repeat, 10_000))
            block = padding * per_block
            for _ in range(repeat // per_block):
                part.write(block)
            part.write(b"</sst>")
    return out.getvalue()


def shared_strings_bomb() -> bytes:
    """170 MB of shared strings (ten million one-letter strings) in about 400 kB."""
    return workbook(padding=b"<si><t>a</t></si>", repeat=10_000_000)


def _trimmed(table) -> list[list[object]]:
    return [[v for v in row if v is not None] for row in table]  # rows come padded to tables.MAX_COLUMNS


@contextmanager
def traced(peak: list[float]):
    """The peak of Python allocations inside the block, in MB."""
    tracemalloc.start()
    try:
        yield
    finally:
        peak.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()


def test_a_shared_strings_bomb_is_refused_before_parsing_with_memory_bounded(tmp_path):
    bomb = shared_strings_bomb()
    info = zipfile.ZipFile(io.BytesIO(bomb)).getinfo("xl/sharedStrings.xml")
    assert len(bomb) < 500_000 and info.file_size > 170_000_000  # about 400 : 1 overall
    peak: list[float] = []
    with traced(peak), pytest.raises(StatsError) as stats_error:
        read_stats_bytes("第47周警情.xlsx", bomb, today=TODAY)
    assert peak[0] < 20, peak  # the archive and a chunk, not ten million strings (before: 960 MB, minutes)
    assert str(stats_error.value).startswith(f"“第47周警情.xlsx”{MESSAGE}")
    assert "另存为" in str(stats_error.value)
    path = tmp_path / "名单.xlsx"
    path.write_bytes(bomb)
    with traced(peak), pytest.raises(RosterError) as roster_error:  # `relaybot roster import` reads the same way
        read_roster_file(path)
    assert peak[1] < 20, peak
    assert str(roster_error.value).startswith(f"“名单.xlsx”{MESSAGE}")


def test_a_bomb_of_long_strings_near_1000_to_1_is_refused_by_its_ratio():
    bomb = workbook(padding=b"<si><t>" + b"a" * 10_000 + b"</t></si>", repeat=1_000)  # 10 MB in 12 kB
    info = zipfile.ZipFile(io.BytesIO(bomb)).getinfo("xl/sharedStrings.xml")
    assert info.file_size > 800 * info.compress_size  # deflate tops out at 1032 : 1
    assert info.file_size < tables.MAX_SHARED_STRINGS  # within the size limits: the ratio refuses it
    with pytest.raises(tables.TableError) as exc:
        tables.read_table("a.xlsx", bomb, max_filled=100)
    assert exc.value.key == "xlsx_unsafe" and "packs" in str(exc.value.values["detail"])


def _central_entry(data: bytearray, start: int, name: str) -> int:
    """Where `name`'s entry in the central directory starts."""
    at = data.find(b"PK\x01\x02", start)
    while data[at + 46 : at + 46 + len(name)] != name.encode():
        at = data.find(b"PK\x01\x02", at + 4)
    return at


def test_too_many_shared_strings_are_refused_however_well_they_pack():
    # 300 000 random two-letter strings: 5.4 MB that packs only some 4 : 1, within every size and ratio limit,
    # but openpyxl would build 300 000 strings one element at a time (830 000 of them took it 114 s and 110 MB).
    letters = string.ascii_letters
    rnd = random.Random(12)
    padding = "".join(f"<si><t>{rnd.choice(letters)}{rnd.choice(letters)}</t></si>" for _ in range(300_000))
    data = workbook(padding=padding.encode(), repeat=1)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/sharedStrings.xml")
    assert info.file_size < tables.MAX_SHARED_STRINGS and info.file_size < 20 * info.compress_size
    with pytest.raises(tables.TableError) as exc:
        tables.read_table("a.xlsx", data, max_filled=100)
    assert exc.value.key == "xlsx_unsafe" and "XML tags" in str(exc.value.values["detail"])


def _lie_about_size(data: bytes, name: str, declared: bytes) -> bytes:
    """The archive with `name`'s headers declaring `declared` (its size and CRC) while its deflate stream holds
    `declared` followed by much more: a reader that trusts the header inflates all of it."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    member = archive.getinfo(name)
    out = bytearray(data)
    crc, size = zlib.crc32(declared), len(declared)
    local = member.header_offset
    assert out[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", out, local + 14, crc)
    struct.pack_into("<I", out, local + 22, size)
    central = _central_entry(out, archive.start_dir, name)
    struct.pack_into("<I", out, central + 16, crc)
    struct.pack_into("<I", out, central + 24, size)
    return bytes(out)


def test_a_member_that_holds_more_than_it_declares_is_not_inflated_past_its_size():
    # openpyxl reads xl/workbook.xml in one read(), which inflates the whole stream before cutting it at the
    # declared size: 200 MB here, from a 200 kB member that says it is half a kilobyte.
    honest = workbook()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(honest)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, 9) as dst:
        for m in src.infolist():
            if m.filename != "xl/workbook.xml":
                dst.writestr(m.filename, src.read(m))
                continue
            with dst.open("xl/workbook.xml", "w") as part:
                part.write(WORKBOOK.encode())
                for _ in range(200):
                    part.write(b" " * 1_000_000)
    lying = _lie_about_size(out.getvalue(), "xl/workbook.xml", WORKBOOK.encode())
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("xl/workbook.xml").file_size == len(WORKBOOK)
    peak: list[float] = []
    with traced(peak):
        try:
            table = tables.read_table("a.xlsx", lying, max_filled=100)
        except tables.TableError as exc:  # refusing it is as good as reading what it declares
            assert exc.key in ("xlsx_open", "xlsx_unsafe")
        else:
            assert _trimmed(table) == FIGURES
    assert peak[0] < 30, peak


def _encrypted(data: bytes) -> bytes:
    out = bytearray(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    member = archive.getinfo("xl/worksheets/sheet1.xml")
    out[member.header_offset + 6] |= 0x1
    out[_central_entry(out, archive.start_dir, member.filename) + 8] |= 0x1
    return bytes(out)


def _bzip2(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as dst:
        for m in src.infolist():
            dst.writestr(m.filename, src.read(m))
    return out.getvalue()


def _with_members(data: bytes, extra: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO(data)
    with warnings.catch_warnings(), zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as z:
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which is the point
        for name, body in extra:
            z.writestr(name, body)
    return out.getvalue()


@pytest.mark.parametrize(
    "make,detail",
    [
        (_encrypted, "encrypted"),
        (_bzip2, "compression method"),
        (lambda d: _with_members(d, [("xl/worksheets/sheet1.xml", b"<worksheet/>")]), "one name"),
        (lambda d: _with_members(d, [(f"x/{i}.xml", b"") for i in range(tables.MAX_MEMBERS)]), "members"),
        (lambda d: _with_members(d, [("x/big.bin", bytes(range(256)) * 210_000)]), "unpacked"),
    ],
    ids=["encrypted", "bzip2", "duplicate-name", "too-many-members", "over-50-MB"],
)
def test_strange_archives_are_refused_with_the_chinese_message(make, detail):
    data = make(workbook())
    with pytest.raises(tables.TableError) as exc:
        tables.read_table("a.xlsx", data, max_filled=100)
    assert exc.value.key == "xlsx_unsafe" and detail in str(exc.value.values["detail"]), exc.value.values
    with pytest.raises(StatsError, match=MESSAGE):
        read_stats_bytes("a.xlsx", data, today=TODAY)


def test_a_workbook_that_needs_a_newer_zip_version_is_refused_in_chinese(tmp_path):
    # The central directory says a member needs zip version 6.4, which Python's zipfile does not read: it raised
    # NotImplementedError out of the reader (a crash instead of the Chinese message) until it was caught.
    out = bytearray(workbook())
    at = 0
    while (at := out.find(b"PK\x01\x02", at)) != -1:
        out[at + 6 : at + 8] = (64).to_bytes(2, "little")  # "version needed to extract"
        at += 4
    with pytest.raises(tables.TableError) as exc:
        tables.read_table("a.xlsx", bytes(out), max_filled=100)
    assert exc.value.key == "xlsx_open"
    with pytest.raises(StatsError, match="无法打开这个 Excel 文件"):
        read_stats_bytes("a.xlsx", bytes(out), today=TODAY)
    path = tmp_path / "名单.xlsx"
    path.write_bytes(bytes(out))
    with pytest.raises(RosterError):
        read_roster_file(path)


def test_normal_workbooks_still_read(tmp_path):
    assert _trimmed(tables.read_table("a.xlsx", workbook(), max_filled=100)) == FIGURES
    rows = read_stats_bytes("警情.xlsx", workbook(), today=TODAY)
    assert [(r.town, r.count) for r in rows] == [("城关镇", 5), ("西湖镇", 2)]
    # The example roster, saved by openpyxl as Excel would save it, imports as the CSV does.
    wb = Workbook()
    for line in EXAMPLE_ROSTER.read_text(encoding="utf-8-sig").splitlines():
        wb.active.append(line.split(","))
    path = tmp_path / "名单.xlsx"
    wb.save(path)
    assert read_roster_file(path) == read_roster_file(EXAMPLE_ROSTER)
