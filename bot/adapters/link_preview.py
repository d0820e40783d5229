"""Link previews: a web page's title, description and image from its Open Graph tags or its <title>."""

from __future__ import annotations

import asyncio
import codecs
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

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
class Preview:
    url: str  # the page's URL after redirects
    title: str
    description: str
    image: str  # absolute http(s) URL, '' if none


async def fetch_preview(
    client: httpx.AsyncClient, url: str, *, timeout: float = 5.0, max_bytes: int = 1_000_000
) -> Preview | None:
    """og:title/og:description/og:image first, then <title> and meta description; None when unreadable or untitled."""
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

    page = _HeadParser()
    try:
        # Without NUL: a title is stored with the push, and PostgreSQL cannot store NUL.
        page.feed(_decode(body, content_type).replace("\x00", ""))
        page.close()
    except AssertionError:  # html.parser's reaction to some malformed "<![" sections; keep what it found
        pass
    title = squash(page.meta.get("og:title", "")) or squash("".join(page.title))
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


class _HeadParser(HTMLParser):
    """Collects <meta> values by property/name, the first <title> and <base href>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title: list[str] = []
        self.base = ""
        self._in_title = False
        self._title_seen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "meta" and "content" in values:
            for key in (values.get("property", ""), values.get("name", "")):
                if key.strip():
                    self.meta.setdefault(key.strip().lower(), values["content"])
        elif tag == "title" and not self._title_seen:
            self._in_title = True
        elif tag == "base" and not self.base:
            self.base = values.get("href", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title, self._title_seen = False, True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
