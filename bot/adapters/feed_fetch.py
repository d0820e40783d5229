"""Content feeds: a bounded, conditional HTTP fetch and a parser for RSS 2.0, Atom 1.0 and JSON Feed 1.x."""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import json
import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
from lxml import etree

from bot.adapters.web_guard import DestinationRefused

MAX_ENTRIES = 100
MAX_GUID = 1000  # FeedItem.guid's length: a longer id is replaced by its hash, so it is stored and recognised whole
MAX_REDIRECTS = 5
USER_AGENT = "Mozilla/5.0 (compatible; relaybot/0.1)"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = {301, 302, 303, 307, 308}
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FeedEntry:
    guid: str  # stable id: the entry id/guid, else its link, else a hash of title+summary
    title: str  # plain text, whitespace collapsed, at most 200 chars
    link: str  # absolute URL (resolved against the feed URL), '' if none
    summary: str  # plain text (HTML stripped), at most 300 chars
    published: datetime | None  # timezone-aware UTC


@dataclass(frozen=True)
class FetchResult:
    status: str  # "ok" | "not_modified" | "error"
    entries: list[FeedEntry]
    etag: str  # new validators to store ('' if none)
    last_modified: str
    error: str  # short English reason for the log when status == "error"; never holds a query string
    title: str = ""  # the feed's own title


class FeedError(ValueError):
    """The bytes are not a feed we can read."""


class BodyTooLarge(Exception):
    """The response body went past the byte limit."""


class RedirectError(Exception):
    """More than MAX_REDIRECTS redirects, or a redirect away from http(s)."""


# --- HTTP, shared with bot.adapters.link_preview -------------------------------------------------------------


def is_http_url(url: str) -> bool:
    """True for an absolute http:// or https:// URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


async def open_get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """GET with the body unread, following at most MAX_REDIRECTS redirects; the caller closes it."""
    # Redirects are followed here rather than by the client, whose own setting and limit we don't control.
    for _ in range(MAX_REDIRECTS + 1):
        # Asked for explicitly: the client's default would also offer br and zstd when those packages are installed.
        request = client.build_request("GET", url, headers={**headers, "Accept-Encoding": ACCEPT_ENCODING})
        response = await client.send(request, stream=True, follow_redirects=False)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return response
        await response.aclose()
        url = urljoin(str(response.url), location.strip())
        if not is_http_url(url):
            raise RedirectError("redirect to a non-HTTP URL")
    raise RedirectError(f"more than {MAX_REDIRECTS} redirects")


class _BoundedDecoder:
    """Undoes one Content-Encoding (gzip, deflate or none) without ever producing more than the caller allows.

    httpx decodes a chunk completely before anyone can count it, and it undoes a stacked `gzip, gzip` twice: a
    1.8 kB response became gigabytes before the cap was looked at. Here the raw bytes are decoded with zlib's
    `max_length`, so the output is bounded whatever the input claims.
    """

    def __init__(self, encoding: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
        if len(codings) > 1:
            raise BodyTooLarge  # stacked encodings serve nobody but a decompression bomb
        coding = codings[0] if codings else ""
        self._zlib: zlib._Decompress | None
        if coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._zlib = zlib.decompressobj()  # zlib-wrapped, as RFC 9110 says (raw deflate is tried below)
        elif coding == "":
            self._zlib = None
        else:
            raise BodyTooLarge  # br, zstd, ...: not asked for (see ACCEPT_ENCODING), so not read
        self._raw_fallback = coding == "deflate"

    def decode(self, data: bytes, room: int) -> bytes:
        """At most `room` + 1 bytes of output for `data`; more than `room` means the body is too large."""
        if self._zlib is None:
            return data
        try:
            out = self._zlib.decompress(data, room + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise
            # Some servers send raw deflate under "deflate": start again without the zlib header.
            self._zlib, self._raw_fallback = zlib.decompressobj(-zlib.MAX_WBITS), False
            out = self._zlib.decompress(data, room + 1)
        self._raw_fallback = False
        if self._zlib.unconsumed_tail:
            return out + b"\0"  # input left over at the limit: the output would be longer than allowed
        return out


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it came over the wire, still encoded."""
    try:
        async for raw in response.aiter_raw():
            yield raw
    except httpx.StreamConsumed:
        # A response built in memory (httpx.MockTransport, as in tests) has its whole body already.
        yield response.content


# Only what _BoundedDecoder can undo with a bound.
ACCEPT_ENCODING = "gzip, deflate"


async def read_capped(response: httpx.Response, max_bytes: int, *, until: tuple[bytes, ...] = ()) -> bytes:
    """The decoded body, or its start up to a lowercase `until` marker; BodyTooLarge past max_bytes, counted
    after decompression (and before it is done, so a decompression bomb costs no more than max_bytes)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes and not until:
        raise BodyTooLarge
    decoder = _BoundedDecoder(response.headers.get("content-encoding", ""))
    overlap = max((len(marker) for marker in until), default=0)
    body = bytearray()
    try:
        async for raw in _raw_chunks(response):
            chunk = decoder.decode(raw, max_bytes - len(body))
            # Search only the new part (plus an overlap) so a long body doesn't make this quadratic.
            start = max(0, len(body) - overlap)
            body += chunk
            if until:
                window = body[start:].lower()
                if any(marker in window for marker in until):
                    return bytes(body)
            if len(body) > max_bytes:
                raise BodyTooLarge
    except zlib.error as exc:
        raise httpx.DecodingError(f"broken {response.headers.get('content-encoding', '')} body: {exc}") from None
    return bytes(body)


def redact(text: str, url: str = "") -> str:
    """`text` with query strings and fragments cut from every URL in it (they may carry tokens)."""
    query = urlsplit(url).query if url else ""
    if query:
        text = text.replace(query, "")
    return re.sub(r"(https?://[^\s?#'\"<>]*)[?#][^\s'\"<>]*", r"\1", text)


# --- text ----------------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "td",
    "th",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "hr",
    "img",
    "figure",
    "figcaption",
}


def squash(text: str) -> str:
    """Whitespace runs (including full-width spaces) collapsed to one space, ends stripped."""
    return " ".join(text.split())


# A summary shows 300 characters: reading further into an entry's HTML than this buys nothing.
MAX_MARKUP = 100_000


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    markup = markup[:MAX_MARKUP]
    if "<" not in markup and "&" not in markup:
        return squash(markup)
    # libxml2's parser, linear in the input: html.parser is quadratic on some markup (CVE-2025-6069).
    parser = etree.HTMLParser(
        encoding="utf-8", recover=True, no_network=True, remove_comments=True, remove_pis=True, default_doctype=False
    )
    try:
        # As UTF-8 bytes with the encoding named: lxml refuses a str with a lone surrogate (JSON can spell one).
        parser.feed(markup.encode("utf-8", "replace"))
        root = parser.close()  # None when there is no element or text at all (a lone comment)
    except etree.LxmlError:
        return squash(html.unescape(re.sub(r"<[^>]*>?", " ", markup)))
    if root is None:
        return ""
    parts: list[str] = []
    skip = 0  # inside <script>/<style>, whose text is not prose
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag in ("script", "style"):
                skip += 1
            elif tag in _BLOCK_TAGS:
                parts.append(" ")  # "<p>a</p><p>b</p>" must not read "ab"
            if not skip and element.text:
                parts.append(element.text)
        else:
            if tag in ("script", "style"):
                skip = max(0, skip - 1)
            elif tag in _BLOCK_TAGS:
                parts.append(" ")
            if not skip and element.tail:
                parts.append(element.tail)
    return squash("".join(parts))


def cap(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- parsing -------------------------------------------------------------------------------------


def parse_feed(content: bytes, *, content_type: str = "", base_url: str = "") -> tuple[str, list[FeedEntry]]:
    """(feed title, entries) from RSS 2.0, Atom 1.0 or JSON Feed 1.x bytes; raises FeedError for garbage."""
    if not content.strip():
        raise FeedError("empty body")
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{" or ("json" in content_type.lower() and head != b"<"):
        title, entries = _parse_json_feed(content, base_url)
    else:
        title, entries = _parse_xml_feed(content, content_type, base_url)
    # Newest first (undated ones after, in document order); the first copy of a repeated guid wins.
    entries.sort(key=lambda e: e.published or _OLDEST, reverse=True)
    unique: dict[str, FeedEntry] = {}
    for entry in entries:
        unique.setdefault(entry.guid, entry)
    return cap(_storable(title), 200), list(unique.values())[:MAX_ENTRIES]


def _parse_xml_feed(content: bytes, content_type: str, base_url: str) -> tuple[str, list[FeedEntry]]:
    headers = {"content-type": content_type or "application/xml"}
    if base_url:
        headers["content-location"] = base_url
    try:
        # A BytesIO, never raw bytes: feedparser tries to open() bytes as a local file name first.
        # Without feedparser's sanitizer and URI rewriting: both re-parse every entry's HTML with sgmllib, which is
        # quadratic on some markup (400 kB of "&lt;!--" took 28 s), and html_to_text keeps only the text anyway.
        doc = feedparser.parse(
            io.BytesIO(content), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # feedparser has odd corners; a hostile feed must not crash the poller
        raise FeedError(f"not a feed ({type(exc).__name__})") from None
    if not doc.get("entries") and (doc.get("bozo") or not doc.get("version")):
        reason = type(doc.get("bozo_exception")).__name__ if doc.bozo else "unknown format"
        raise FeedError(f"not a feed ({reason})")
    entries = [
        _entry(
            ids=[_plain(e.get("id"))],
            title=_detail_text(e, "title"),
            link=_plain(e.get("link")),  # feedparser gives None for some broken entries
            summary=_detail_text(e, "summary") or _content_text(e),
            published=_from_struct(e.get("published_parsed") or e.get("updated_parsed")),
            base_url=base_url,
        )
        for e in doc.entries
    ]
    return _detail_text(doc.get("feed") or {}, "title"), entries


def _parse_json_feed(content: bytes, base_url: str) -> tuple[str, list[FeedEntry]]:
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: "[[[[…" nested deeply
        raise FeedError(f"invalid JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/1"):
        raise FeedError("JSON but not a JSON Feed 1.x")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError("JSON Feed without an items list")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        summary = _str(item.get("summary")) or _str(item.get("content_text"))
        entries.append(
            _entry(
                ids=[_str(item.get("id"))],
                title=_str(item.get("title")),
                link=_str(item.get("url")) or _str(item.get("external_url")),
                summary=squash(summary) if summary else html_to_text(_str(item.get("content_html"))),
                published=_from_iso(item.get("date_published")) or _from_iso(item.get("date_modified")),
                base_url=base_url,
            )
        )
    return squash(_str(doc.get("title"))), entries


def _entry(
    *, ids: list[str], title: str, link: str, summary: str, published: datetime | None, base_url: str
) -> FeedEntry:
    title, summary = cap(squash(_storable(title)), 200), cap(_storable(summary), 300)
    ids = [_storable(i) for i in ids if i]
    link = _storable(link).strip()
    if link:
        try:
            link = urljoin(base_url, link)
        except ValueError:  # e.g. "http://[::1": not a URL anyone can open
            link = ""
    guid = next((i.strip() for i in ids if i and i.strip()), "") or link
    if not guid:
        guid = "sha256:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    elif len(guid) > MAX_GUID:
        # Stored cut to MAX_GUID, the next poll would not know it and store it again (a unique-key error).
        guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    return FeedEntry(guid=guid, title=title, link=link, summary=summary, published=published)


def _detail_text(node: dict, key: str) -> str:
    # feedparser says per field whether the value is HTML; plain text may hold a literal '<'.
    value = _plain(node.get(key))
    kind = _plain((node.get(f"{key}_detail") or {}).get("type")) or "text/html"
    return html_to_text(value) if "html" in kind else squash(value)


def _content_text(entry: dict) -> str:
    for content in entry.get("content") or []:
        value = _plain(content.get("value"))
        text = html_to_text(value) if "html" in (_plain(content.get("type")) or "html") else squash(value)
        if text:
            return text
    return ""


def _plain(value: object) -> str:
    """A string field of feedparser's result, which may be None (or odder) in a broken feed."""
    return value if isinstance(value, str) else ""


def _str(value: object) -> str:
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""


def _storable(text: str) -> str:
    """Text any database stores: no NUL (PostgreSQL refuses it), no lone surrogate (JSON can spell one, \\ud800)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _from_struct(value) -> datetime | None:
    # feedparser's *_parsed values are UTC struct_times.
    if not value:
        return None
    try:
        return datetime(value[0], value[1], value[2], value[3], value[4], min(value[5], 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _from_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        # A date without an offset breaks RFC 3339; UTC is the least surprising reading.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+05:00 is before year 1 in UTC
        return None


# --- fetching ------------------------------------------------------------------------------------


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    timeout: float = 10.0,
    max_bytes: int = 2_000_000,
    retries: int = 2,
    retry_delay: float = 0.5,
) -> FetchResult:
    """Never raises for network or content problems: returns status "error" with the reason. The client decides
    where it may connect (web_guard.guarded_client); a refused destination is such an error, and not retried."""

    def failed(reason: str) -> FetchResult:
        # The old validators go back unchanged, so storing them after an error is harmless.
        return FetchResult("error", [], etag, last_modified, redact(reason, url)[:300])

    if not is_http_url(url):
        return failed("not an http(s) URL")
    headers = {"User-Agent": USER_AGENT, "Accept": FEED_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified

    loop = asyncio.get_running_loop()
    # `timeout` bounds the whole call, retries included: a poller must know when it gets its turn back.
    deadline = loop.time() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            async with asyncio.timeout_at(deadline):
                response = await open_get(client, url, headers)
                try:
                    status = response.status_code
                    if status == 304:
                        return FetchResult("not_modified", [], etag, last_modified, "")
                    if response.is_success:
                        body = await read_capped(response, max_bytes)
                        break
                    if status < 500:
                        return failed(f"HTTP {status}")
                    reason = f"HTTP {status}"
                finally:
                    await response.aclose()
        except TimeoutError:
            return failed(f"timed out after {timeout:g} s")
        except BodyTooLarge:
            return failed(f"too large (over {max_bytes} bytes)")
        except (RedirectError, DestinationRefused) as exc:  # another try would be refused the same way
            return failed(str(exc))
        except (httpx.TimeoutException, httpx.NetworkError) as exc:
            reason = _describe(exc)
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as exc:
            return failed(_describe(exc))
        # Only server errors, failed connections and the client's own timeouts get here: worth another try.
        if tries > retries or loop.time() + retry_delay >= deadline:
            return failed(reason if tries == 1 else f"{reason} (after {tries} tries)")
        await asyncio.sleep(retry_delay)

    try:
        # feedparser is pure Python and a 2 MB feed takes a noticeable while: keep the event loop free.
        title, entries = await asyncio.to_thread(
            parse_feed, body, content_type=response.headers.get("content-type", ""), base_url=str(response.url)
        )
    except FeedError as exc:
        return failed(str(exc))
    return FetchResult(
        "ok", entries, response.headers.get("etag", ""), response.headers.get("last-modified", ""), "", title
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"{type(exc).__name__} (the client's own timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
