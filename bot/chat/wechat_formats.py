"""WeChat's own message formats as the puppets hand them on (see shared notes): 群接龙 in its title-only and raw
XML forms, quote replies as raw XML (app message type 57), recalls and pats (<sysmsg>), and the silent
rate-limit notice. Pure functions on text; the text is hostile, so it is cut first and read with bounded
regular expressions (no XML parser: no entities, no nesting to exhaust)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

MAX_XML = 200_000  # a 接龙 with a few hundred entries is far below this

_TAG = {
    name: re.compile(rf"<{name}>(.*?)</{name}>", re.DOTALL)
    for name in (
        "title",
        "type",
        "content",
        "displayname",
        "chatusr",
        "svrid",
        "newmsgid",
        "fromusername",
        "pattedusername",
        "solitaire_info",
    )
}
_CDATA = re.compile(r"^\s*<!\[CDATA\[(.*)\]\]>\s*$", re.DOTALL)
_REFERMSG = re.compile(r"<refermsg>(.*?)</refermsg>", re.DOTALL)
_SYSMSG = re.compile(r"<sysmsg\s+type=\"([a-z_]{1,30})\"")
_SOLITAIRE_ITEM = re.compile(
    r"<i>\s*<u>([^<]{1,200})</u>\s*(?:<t>(\d{1,13})</t>)?\s*<r>(\d{1,6})-(\d{1,6})</r>", re.DOTALL
)
_NOTE_MARK = re.compile(r"#\s*(?:接龙|group\s*note)", re.IGNORECASE)
_ENTRY = re.compile(r"^\s*(\d{1,4})\s*[.．、]\s*(.*)$")
_RATE_LIMIT = re.compile(r"(?:发送消息|操作|发消息|消息发送)(?:过于|太)频繁")


def _tag(name: str, text: str) -> str:
    m = _TAG[name].search(text)
    if not m:
        return ""
    value = m.group(1)
    cdata = _CDATA.match(value)
    return cdata.group(1) if cdata else html.unescape(value)


def is_xml(text: str) -> bool:
    """Raw XML as puppet-xp and wcferry pass app messages and system messages on."""
    head = text.lstrip()[:200]
    return head.startswith("<") and ("<msg" in head or "<sysmsg" in head or "<?xml" in head or "<appmsg" in head)


@dataclass(frozen=True)
class XmlQuote:
    """A quote reply (app message type 57): the reply, and the quoted message's text and author."""

    reply: str
    quoted: str
    quoted_name: str
    quoted_id: str  # the author's contact id


def xml_quote(text: str) -> XmlQuote | None:
    """A raw-XML quote reply, or None."""
    text = text[:MAX_XML]
    if not is_xml(text) or _tag("type", text) != "57":
        return None
    refer = _REFERMSG.search(text)
    inner = refer.group(1) if refer else ""
    # The <type> of the app message comes before <refermsg>; read the reply title outside the quoted part.
    outside = text.replace(inner, "") if inner else text
    return XmlQuote(
        reply=_tag("title", outside),
        quoted=_tag("content", inner),
        quoted_name=_tag("displayname", inner),
        quoted_id=_tag("chatusr", inner),
    )


@dataclass(frozen=True)
class NoteEntry:
    number: int
    text: str
    author_id: str = ""  # known from the raw XML's solitaire_info only


@dataclass(frozen=True)
class GroupNote:
    """A 群接龙: its header lines (title, e.g. `11月30日反诈预警转发情况` or `#3 转发情况`) and its entries."""

    header: str
    entries: tuple[NoteEntry, ...]
    has_authors: bool  # the raw XML said who wrote each entry


def group_note(text: str) -> GroupNote | None:
    """A 群接龙 in any of its forms (raw XML with solitaire_info, its title only, the old plain text), or None."""
    text = text[:MAX_XML]
    authors: list[tuple[str, int, int]] = []
    if is_xml(text):
        if _tag("type", text) != "53":
            return None
        title = _tag("title", text)
        info = _tag("solitaire_info", text)
        for m in _SOLITAIRE_ITEM.finditer(info):
            authors.append((m.group(1).strip(), int(m.group(3)), int(m.group(4))))
    else:
        title = text
    lines = title.replace("\r\n", "\n").split("\n")
    first = "\n".join(lines[:3])
    mark = _NOTE_MARK.search(first)
    if not mark:
        return None
    header_lines: list[str] = []
    entries: list[list] = []  # [number, text, start offset in UTF-16 units]
    offset = 0
    for line in lines:
        entry = _ENTRY.match(line)
        if entry:
            entries.append([int(entry.group(1)), entry.group(2).strip(), _utf16_len(title, offset)])
        elif entries and line.strip():
            entries[-1][1] += " " + line.strip()  # an entry spanning several lines
        elif not entries and line.strip():
            header_lines.append(line.strip())
        offset += len(line) + 1
    header = _NOTE_MARK.sub(" ", "\n".join(header_lines)).strip()
    result = []
    for number, entry_text, start in entries:
        author = ""
        for wxid, r_start, r_len in authors:
            if r_start <= start < r_start + max(1, r_len) or abs(r_start - start) <= 4:
                author = wxid
                break
        result.append(NoteEntry(number, entry_text, author))
    return GroupNote(header=header, entries=tuple(result), has_authors=bool(authors))


def _utf16_len(text: str, end: int) -> int:
    """The UTF-16 code-unit offset of `end` in `text` (solitaire_info counts in UTF-16 units)."""
    return len(text[:end].encode("utf-16-le")) // 2


@dataclass(frozen=True)
class SysMsg:
    kind: str  # "revokemsg", "pat", ...
    recalled_id: str = ""  # for a recall: the recalled message's id (<newmsgid>)


def sysmsg(text: str) -> SysMsg | None:
    """A <sysmsg> (a recall, a pat), or None."""
    text = text[:MAX_XML]
    m = _SYSMSG.search(text[:2000])
    if not m:
        return None
    kind = m.group(1)
    return SysMsg(kind, _tag("newmsgid", text).strip() if kind == "revokemsg" else "")


def is_rate_limit_notice(text: str) -> bool:
    """WeChat's notice that the account sends too often (`发送消息过于频繁，可稍后再试。`, `操作过于频繁…`)."""
    return bool(_RATE_LIMIT.search(text[:500]))
