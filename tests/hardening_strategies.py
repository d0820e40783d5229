"""Hypothesis strategies shared by the hardening tests: odd Unicode, very long text, hostile bytes and files."""

from __future__ import annotations

import io
import json
import re
import zipfile
from functools import cache

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

# Modest example counts: the hardening files must run in well under a minute on two shared cores.
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(FAST, max_examples=50)

# Damaged images and feeds make PIL and feedparser warn; the warnings are expected, the crashes are what is tested.
EXPECTED_WARNINGS = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:feedparser"),
]

CJK = re.compile(r"[\u4e00-\u9fff]")

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad"]
DIRECTION = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2069"]
COMBINING = ["\u0301", "\u0308", "\u0323", "\u20dd", "\u3099", "\u0e49"]
EMOJI = [
    "👍",
    "🙏",
    "✅",
    "👨\u200d👩\u200d👧\u200d👦",
    "🏳\ufe0f\u200d🌈",
    "👍🏽",
    "1\ufe0f\u20e3",
    "🇨🇳",
    "\U0001f9d1\u200d\U0001f4bb",
]
FULL_WIDTH = ["＃１", "１２３", "ＡＢＣ", "　", "：", "（", "）", "－", "～", "，", "。", "！", "？", "＠"]
ODD = (
    ZERO_WIDTH
    + DIRECTION
    + COMBINING
    + EMOJI
    + FULL_WIDTH
    + ["\n", "\r\n", "\r", "\t", "\u2028", "\u3000", "\x00", "\x7f", "\u2005", "\ud7ff", "\U0010fffd"]
)
# Words the parsers look for, so examples reach past the first check instead of failing at once.
WORDS = [
    "已转发",
    "已转",
    "转发了",
    "已经转发到本单位群",
    "收到",
    "好的",
    "本单位",
    "单位",
    "#1",
    "#2",
    "# 3",
    "#9999999",
    "#0",
    "推送",
    "进度",
    "提醒",
    "截止",
    "撤回",
    "帮助",
    "报表",
    "单位",
    "请假",
    "销假",
    "工作日",
    "休息日",
    "警情",
    "设为联络员群",
    "取消联络员群",
    "设为办公群",
    "取消办公群",
    "刷单",
    "公检法",
    "候选1",
    "候选999999999",
    "城关镇",
    "西湖镇",
    "东城街道",
    "区教育局",
    "金融行业",
    "王芳",
    "周敏（西湖镇）",
    "@反诈助手",
    "@王芳\u2005",
    "今天",
    "明天",
    "后天",
    "今晚",
    "下午",
    "18:00",
    "12点",
    "9点半",
    "11月30日",
    "2026-12-01 09:00",
    "13月45日",
    "9999-12-31",
    "0000-01-01",
    "2026-W47",
    "2026年第53周",
    "2026-11",
    "至",
    "到",
    "~",
    "—",
    "-",
    "吗",
    "不",
    "「",
    "」",
    "：",
    "- - - - - - - - - - - - - - -",
    "反诈预警",
    "https://example.invalid/a?b=1",
    "http://[::1",
    '=HYPERLINK("http://x")',
    "../../etc/passwd",
    "合计",
]


def long_text(pieces: st.SearchStrategy[str] | None = None, min_len: int = 10_000, max_len: int = 12_000):
    """Text of 10 000+ characters, built by repeating a generated piece (generating it char by char is slow)."""
    if pieces is None:
        pieces = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(WORDS + ODD))
    return st.tuples(pieces.filter(bool), st.integers(min_len, max_len)).map(
        lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]]
    )


def words_text(max_size: int = 12) -> st.SearchStrategy[str]:
    """Parser words mixed with odd Unicode and arbitrary snippets."""
    part = st.one_of(st.sampled_from(WORDS), st.sampled_from(ODD), st.text(max_size=4))
    return st.lists(part, max_size=max_size).map("".join)


def any_text() -> st.SearchStrategy[str]:
    """Arbitrary (surrogate-free) text, parser-shaped text, and 10 000+ character messages."""
    return st.one_of(st.text(), words_text(), words_text(40), long_text())


# --- files --------------------------------------------------------------------------------------


@cache
def template_xlsx(header: tuple[str, ...], row: tuple[str, ...]) -> bytes:
    """A real one-sheet workbook, to be damaged inside an intact zip."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(list(header))
    wb.active.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def replace_member(data: bytes, name: str, content: bytes) -> bytes:
    """The zip `data` with member `name` replaced by `content` (still a valid zip)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            z.writestr(item, content if item.filename == name else src.read(item.filename))
    return out.getvalue()


_SHEET_HEAD = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
_SHEET_TAIL = b"</sheetData></worksheet>"
_CELL_REFS = ["A1", "B1", "A2", "B2", "C2", "ZZZZZZ1", "A0", "1A", "", "A30000", "XFD3", "a1"]
_CELL_TYPES = ["s", "n", "d", "b", "e", "str", "inlineStr", "x", ""]


@st.composite
def sheet_xml(draw) -> bytes:
    """Worksheet XML that is well-formed or nearly so: wrong types, bad references, odd values."""
    rows = []
    for r in range(draw(st.integers(0, 4))):
        cells = []
        for _ in range(draw(st.integers(0, 4))):
            ref = draw(st.sampled_from(_CELL_REFS))
            kind = draw(st.sampled_from(_CELL_TYPES))
            value = draw(
                st.one_of(
                    st.sampled_from(["0", "1", "-1", "1e308", "nan", "99", "abc", "2026-11-26", "x"]),
                    st.text(alphabet=st.characters(codec="ascii", exclude_characters="<&"), max_size=8),
                )
            )
            attrs = (f' r="{ref}"' if ref else "") + (f' t="{kind}"' if kind else "")
            cells.append(f"<c{attrs}><v>{value}</v></c>".encode())
        # (Row numbers in the millions have a test of their own: each costs most of a second even when handled.)
        row_attr = draw(st.sampled_from(["", f' r="{r + 1}"', ' r="x"', ' r="0"', ' r="-3"', ' r="30000"']))
        rows.append(f"<row{row_attr}>".encode() + b"".join(cells) + b"</row>")
    body = _SHEET_HEAD + b"".join(rows) + _SHEET_TAIL
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(body)))
        body = body[:cut]
    return body


def damaged_xlsx(header: tuple[str, ...], row: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    """A valid zip holding a workbook whose sheet (or shared strings, or workbook part) is broken."""
    base = template_xlsx(header, row)
    return st.one_of(
        sheet_xml().map(lambda xml: replace_member(base, "xl/worksheets/sheet1.xml", xml)),
        st.binary(max_size=200).map(lambda b: replace_member(base, "xl/worksheets/sheet1.xml", b)),
        st.binary(max_size=200).map(lambda b: replace_member(base, "xl/workbook.xml", b)),
        st.binary(max_size=200).map(lambda b: replace_member(base, "xl/styles.xml", b)),
        st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)).map(
            lambda t: base[: t[0]] + bytes([t[1]]) + base[t[0] + 1 :]
        ),
        st.integers(0, len(base)).map(lambda n: base[:n]),
    )


def csv_bytes(header: list[str]) -> st.SearchStrategy[bytes]:
    """CSV files: arbitrary bytes, odd encodings, and plausible tables with hostile cells."""
    cell = st.one_of(st.sampled_from(WORDS + ODD), st.text(max_size=10), long_text(max_len=10_500))
    table = st.lists(st.lists(cell, max_size=len(header) + 2), max_size=6).map(
        lambda rows: "\n".join(",".join(f'"{c.replace(chr(34), chr(34) * 2)}"' for c in r) for r in [header, *rows])
    )
    return st.one_of(
        st.binary(max_size=300),
        table.map(lambda t: t.encode("utf-8")),
        table.map(lambda t: "\ufeff".encode() + t.encode("utf-8")),
        table.map(lambda t: t.encode("gb18030", errors="replace")),
        table.map(lambda t: t.encode("utf-16")),
        table.map(lambda t: t.replace(",", "\x00", 1).encode("utf-8")),
        table.map(lambda t: ('"' + t).encode("utf-8")),
    )


# --- feeds, web pages, images ---------------------------------------------------------------------


_HOSTILE_VALUES = [
    "http://[::1",
    "http://[",
    "javascript:alert(1)",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2026-13-45",
    "Tue, 02 Jun 0000 09:30:00 +0800",
    "\x00",
    "<![CDATA[",
    "&#0;",
    "&#xD800;",
    "&bogus;",
    "<script>",
    "]]>",
]
_feed_text = st.one_of(st.sampled_from(_HOSTILE_VALUES + WORDS + ODD), st.text(max_size=20), long_text(max_len=10_100))


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


@st.composite
def rss_documents(draw) -> bytes:
    items = []
    for _ in range(draw(st.integers(0, 3))):
        fields = {
            tag: draw(_feed_text)
            for tag in draw(st.sets(st.sampled_from(["title", "link", "guid", "description", "pubDate"])))
        }
        raw = draw(st.booleans())  # unescaped: markup (or broken markup) inside the element
        items.append(
            "<item>" + "".join(f"<{k}>{v if raw else _xml_escape(v)}</{k}>" for k, v in fields.items()) + "</item>"
        )
    kind = draw(st.sampled_from(["rss", "atom"]))
    if kind == "rss":
        doc = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{_xml_escape(draw(_feed_text))}</title>'
            + "".join(items)
            + "</channel></rss>"
        )
    else:
        doc = (
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            + "".join(
                i.replace("<item>", "<entry>")
                .replace("</item>", "</entry>")
                .replace("<link>", '<link href="')
                .replace("</link>", '"/>')
                for i in items
            )
            + "</feed>"
        )
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "gb18030"]))
    return doc.encode(encoding, errors="replace")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _feed_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def json_feeds(draw) -> bytes:
    keys = [
        "id",
        "url",
        "external_url",
        "title",
        "summary",
        "content_text",
        "content_html",
        "date_published",
        "date_modified",
    ]
    items = [
        {k: draw(st.one_of(_feed_text, _json_values)) for k in draw(st.sets(st.sampled_from(keys)))}
        for _ in range(draw(st.integers(0, 3)))
    ]
    doc = {
        "version": draw(st.sampled_from(["https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1", 1])),
        "title": draw(st.one_of(_feed_text, _json_values)),
        "items": draw(st.one_of(st.just(items), _json_values)),
    }
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


CHARSETS = [
    "utf-8",
    "gb2312",
    "gbk",
    "big5",
    "utf-16",
    "utf-16le",
    "idna",
    "undefined",
    "punycode",
    "rot13",
    "base64",
    "zlib",
    "bogus-label",
    "",
    "utf-7",
    "unicode_escape",
    "hex",
    "iso-8859-1",
]
_URLS = [
    "https://example.invalid/img.png",
    "/rel.png",
    "http://[::1",
    "http://[",
    "javascript:alert(1)",
    "data:image/png;base64,AAAA",
    "//cdn.invalid/x.png",
    "",
    " ",
    "\x00",
]


@st.composite
def html_pages(draw) -> bytes:
    def attr(text: str) -> str:
        return text.replace("&", "&amp;").replace('"', "&quot;")

    parts = ["<!doctype html><html><head>"]
    if draw(st.booleans()):
        parts.append(f'<meta charset="{draw(st.sampled_from(CHARSETS))}">')
    if draw(st.booleans()):
        parts.append(f'<base href="{attr(draw(st.sampled_from(_URLS)))}">')
    for key in draw(
        st.sets(st.sampled_from(["og:title", "og:description", "og:image", "description", "og:image:url"]))
    ):
        value = draw(st.one_of(st.sampled_from(_URLS + WORDS + ODD), st.text(max_size=20), long_text(max_len=10_100)))
        parts.append(f'<meta property="{key}" content="{attr(value)}">')
    if draw(st.booleans()):
        parts.append(f"<title>{draw(st.one_of(st.text(max_size=20), st.sampled_from(WORDS + ODD)))}</title>")
    parts.append(draw(st.sampled_from(["</head><body>", "", "<![if", "<!--", "<body"])))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "gb18030", "latin-1"]))
    return "".join(parts).encode(encoding, errors="replace")


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


_IMAGES = [_image("PNG"), _image("JPEG"), _image("GIF"), _image("WEBP"), _image("BMP"), _image("TIFF")]
# A PNG header claiming 100 000 x 100 000 pixels: a decompression bomb must be refused before it is decoded.
_BOMB = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (100_000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00" + b"\x00" * 4
)

damaged_images = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from(_IMAGES), st.integers(0, 10_000)).map(lambda t: t[0][: t[1] % (len(t[0]) + 1)]),
    st.tuples(st.sampled_from(_IMAGES), st.integers(0, 10_000), st.integers(0, 255)).map(
        lambda t: t[0][: t[1] % len(t[0])] + bytes([t[2]]) + t[0][t[1] % len(t[0]) + 1 :]
    ),
    st.tuples(
        st.sampled_from([b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM", b"II*\x00"]), st.binary(max_size=100)
    ).map(lambda t: t[0] + t[1]),
    st.just(_BOMB),
)
