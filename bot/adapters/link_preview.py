"""Link previews: a web page's title, description and image from its Open Graph tags or its <title>."""

from __future__ import annotations

import asyncio
import codecs
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
from lxml import etree

from bot.adapters.feed_fetch import (
    USER_AGENT,
    BodyTooLarge,
    RedirectError,
    cap,
    is_http_url,
    open_get,
    read_capped,
    squash,
)
from bot.adapters.web_guard import DestinationRefused
from bot.transport.base import LinkCard

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
}
# Everything we need sits in <head>; stop there so big article pages (WeChat's run to megabytes) still work.
_HEAD_END = (b"</head", b"<body")
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
# As browsers do (WHATWG encoding labels): pages labelled GB2312 or GBK routinely hold GBK/GB18030-only
# characters, and GB18030 is a superset of both.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}


@dataclass(frozen=True)
class RefusedLink(LinkCard):
    """The card for a link whose page was not read because it leads to an internal address: its URL is its title."""


@dataclass(frozen=True)
class Preview:
    url: str  # the page's URL after redirects
    title: str
    description: str
    image: str  # absolute http(s) URL, '' if none


async def fetch_preview(
    client: httpx.AsyncClient, url: str, *, timeout: float = 5.0, max_bytes: int = 1_000_000
) -> Preview | None:
    """og:title/og:description/og:image first, then <title> and meta description; None when unreadable or untitled.
    Raises DestinationRefused when the client (web_guard.guarded_client) refused to connect to the link's address
    or a redirect's: the caller tells the office why the page was not read."""
    if not is_http_url(url):
        return None
    try:
        async with asyncio.timeout(timeout):  # the whole fetch, so a trickling server can't hold us
            response = await open_get(client, url, _HEADERS)
            try:
                content_type = response.headers.get("content-type", "")
                media_type = content_type.split(";")[0].strip().lower()
                if not response.is_success or (media_type and media_type not in _HTML_TYPES):
                    return None
                body = await read_capped(response, max_bytes, until=_HEAD_END)
            finally:
                await response.aclose()
    except DestinationRefused:
        raise
    except (
        TimeoutError,
        BodyTooLarge,
        RedirectError,
        httpx.HTTPError,
        httpx.InvalidURL,
        httpx.StreamError,
        OSError,
        ValueError,
    ):
        return None

    # libxml2's parser is linear where html.parser is quadratic on some pages (CVE-2025-6069: 300 kB of unclosed
    # "<a" took 37 s); it still runs in a thread, so even a slow parse never holds the messages behind it.
    page = await asyncio.to_thread(_read_head, _decode(body, content_type))
    title = squash(page.meta.get("og:title", "")) or squash(page.title)
    if not title:
        return None
    description = squash(page.meta.get("og:description", "")) or squash(page.meta.get("description", ""))
    image = next((page.meta[k] for k in ("og:image", "og:image:url", "og:image:secure_url") if page.meta.get(k)), "")
    try:
        base = urljoin(str(response.url), page.base.strip()) if page.base else str(response.url)
        image = urljoin(base, image.strip()) if image.strip() else ""
    except ValueError:  # a <base href> or og:image like "http://[::1": the page keeps its title, loses the image
        image = ""
    return Preview(
        url=str(response.url),
        title=cap(title, 100),
        description=cap(description, 200),
        image=image if is_http_url(image) else "",  # no data: or javascript: images
    )


def _decode(body: bytes, content_type: str) -> str:
    # Precedence as in browsers: byte order mark, then the HTTP header, then <meta charset>.
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return body.decode(encoding, errors="replace")
    found = _HEADER_CHARSET.search(content_type)
    label = found.group(1) if found else ""
    if not label and (meta := _META_CHARSET.search(body)):
        label = meta.group(1).decode("ascii", errors="ignore")
        if label.lower().startswith("utf-16"):
            label = "utf-8"  # the bytes we just read as ASCII can't be UTF-16 (browsers do the same)
    label = label.lower() or "utf-8"
    try:
        return body.decode(_CHARSET_ALIASES.get(label, label), errors="replace")
    # LookupError: an unknown label, or a Python codec that is not a text encoding (rot13, base64);
    # UnicodeError: a codec that refuses errors="replace" or every input (idna, punycode, undefined).
    except (LookupError, UnicodeError):
        return body.decode("utf-8", errors="replace")


@dataclass
class _Head:
    meta: dict[str, str]  # <meta> content by property and by name, lowercased; the first one wins
    title: str  # the first <title>'s text
    base: str  # the first <base href>


def _read_head(text: str) -> _Head:
    """The <meta> values, first <title> and <base href> of a page (parsed by libxml2, in linear time)."""
    head = _Head({}, "", "")
    parser = etree.HTMLParser(
        encoding="utf-8", recover=True, no_network=True, remove_comments=True, remove_pis=True, default_doctype=False
    )
    # As UTF-8 bytes, with the encoding named: a str with an XML declaration or a lone surrogate is refused.
    # Without NUL: a title is stored with the push, and PostgreSQL cannot store NUL.
    try:
        parser.feed(text.replace("\x00", "").encode("utf-8", "replace"))
        root = parser.close()  # None for a page with no elements
    except etree.LxmlError:  # recover=True makes this rare; a page it happens to has nothing we can use
        return head
    if root is None:
        return head
    title_seen = False
    for element in root.iter("meta", "title", "base"):
        if element.tag == "meta" and "content" in element.attrib:
            for key in (element.get("property", ""), element.get("name", "")):
                if key.strip():
                    head.meta.setdefault(key.strip().lower(), element.get("content", ""))
        elif element.tag == "title" and not title_seen:
            head.title, title_seen = "".join(element.itertext()), True
        elif element.tag == "base" and not head.base:
            head.base = element.get("href", "")
    return head
