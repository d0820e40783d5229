"""Link previews and feeds never reach internal addresses unless the office listed them (issue 12 item 4).

The internal server is pytest-httpserver on 127.0.0.1, serving a page whose title must never reach a group; the
clients here are the bot's own (web_guard.guarded_client) with the default settings, which allow nothing internal.
Each refusal is checked on the internal server's side too: it got no request at all.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest
from sqlmodel import select
from werkzeug import Response

from bot.adapters.feed_fetch import fetch_feed
from bot.adapters.link_preview import fetch_preview
from bot.adapters.web_guard import DestinationRefused, guarded_client, is_public
from bot.config import Settings
from bot.content import load_texts
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Alert, Feed
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM

INTERNAL_TITLE = "内部系统：干警通讯录"
PAGE = f"<html><head><title>{INTERNAL_TITLE}</title></head></html>"
RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>内网源</title>'
    "<item><guid>1</guid><title>内网条目</title></item></channel></rss>"
)


@pytest.fixture
def internal(server):
    server.expect_request("/").respond_with_data(PAGE, content_type="text/html")
    server.expect_request("/page").respond_with_data(PAGE, content_type="text/html")
    server.expect_request("/rss").respond_with_data(RSS, content_type="application/rss+xml")
    return server


@pytest.fixture
async def guarded():
    """The bot's client as the defaults make it: nothing internal allowed."""
    async with guarded_client() as c:
        yield c


@pytest.fixture
def resolver(monkeypatch):
    """Host names the test maps to addresses (a value may be a function: a DNS answer that changes)."""
    names: dict[str, object] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        target = names.get(host, host)
        return real(target() if callable(target) else target, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names, lookups


def test_nothing_internal_is_allowed_by_default():
    for name in ("feed_allowed_hosts", "preview_allowed_hosts"):
        assert Settings.model_fields[name].get_default(call_default_factory=True) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/page",
        "http://2130706433:{port}/page",  # 127.0.0.1 in decimal, as getaddrinfo reads it
        "http://0x7f.0.0.1:{port}/page",  # ... in hex
        "http://017700000001:{port}/page",  # ... in octal
        "http://127.1:{port}/page",
        "http://localhost:{port}/page",
        "http://[::1]:{port}/page",
        "http://[::ffff:127.0.0.1]:{port}/page",  # IPv4-mapped IPv6
        "http://[::ffff:7f00:1]:{port}/page",
        "http://0.0.0.0:{port}/page",
        "http://10.0.0.1:{port}/",
        "http://172.16.5.4:{port}/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
    ],
)
async def test_internal_addresses_are_refused_before_any_request(internal, guarded, url):
    url = url.format(port=internal.port)
    with pytest.raises(DestinationRefused):
        await fetch_preview(guarded, url)
    result = await fetch_feed(guarded, url, retry_delay=0.01)
    assert result.status == "error" and result.error.startswith("refused:")
    assert internal.log == []


async def test_a_public_looking_name_that_resolves_inside_is_refused(internal, guarded, resolver):
    names, _ = resolver
    names["news.example.com"] = "127.0.0.1"
    with pytest.raises(DestinationRefused, match="news.example.com"):
        await fetch_preview(guarded, f"http://news.example.com:{internal.port}/page")
    assert internal.log == []


@pytest.mark.parametrize(
    "target", ["http://127.0.0.1:{port}/", "http://2130706433:{port}/", "http://localhost:{port}/page"]
)
async def test_a_redirect_into_the_network_is_refused(internal, resolver, target):
    # The first hop is a host the office allowed; it redirects to the internal page, which is refused.
    names, _ = resolver
    names["short.example"] = "127.0.0.1"
    internal.expect_request("/go").respond_with_response(
        Response(status=302, headers={"Location": target.format(port=internal.port)})
    )
    async with guarded_client(["short.example"]) as client:
        with pytest.raises(DestinationRefused):
            await fetch_preview(client, f"http://short.example:{internal.port}/go")
    assert [request.path for request, _ in internal.log] == ["/go"]


async def test_the_address_checked_is_the_address_connected_to(internal, resolver):
    # A DNS answer that changes between the check and the connection (DNS rebinding): first an address the
    # client may use (nothing listens there), then the internal server's. Only the first is ever used.
    names, lookups = resolver
    answers = iter(["127.0.0.2", "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    names["rebind.example"] = lambda: next(answers)
    async with guarded_client(["127.0.0.2"]) as client:
        assert await fetch_preview(client, f"http://rebind.example:{internal.port}/page") is None
    assert lookups.count("rebind.example") == 1
    assert internal.log == []


async def test_hosts_the_office_listed_are_reached(internal, resolver):
    names, _ = resolver
    names["feeds.intranet"] = "127.0.0.1"
    for allowed, host in [(["feeds.intranet"], "feeds.intranet"), (["127.0.0.0/8"], "127.0.0.1")]:
        async with guarded_client(allowed) as client:
            result = await fetch_feed(client, f"http://{host}:{internal.port}/rss")
        assert result.status == "ok" and [e.title for e in result.entries] == ["内网条目"]


@pytest.mark.parametrize(
    "address,public",
    [
        ("8.8.8.8", True),
        ("114.114.114.114", True),
        ("2400:3200::1", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("10.1.2.3", False),
        ("172.31.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("::", False),
        ("::1", False),
        ("::127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("2002:7f00:1::1", False),  # 6to4 around 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 around 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 around 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_what_counts_as_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


# --- the running bot ----------------------------------------------------------------------------------------


@pytest.fixture
async def default_bot(settings, transport, engine, clock, roster, internal):
    """A bot whose link previews are as the defaults make them; its feed may be on 127.0.0.1 (the office listed it)."""
    b = build_bot(
        settings.model_copy(
            update={
                "preview_allowed_hosts": [],
                "feed_allowed_hosts": ["127.0.0.1"],
                "feeds": [internal.url_for("/rss")],
            }
        ),
        transport,
        engine=engine,
        clock=clock,
        send_loop=False,
    )
    await b.start()
    await b.send_pending()
    transport.sent.clear()
    yield b
    await b.stop()


async def test_a_pushed_internal_link_is_not_read_and_the_office_is_asked_for_a_title(default_bot, transport, internal):
    texts = load_texts()
    why = texts.t("push_title.why_internal")
    url = internal.url_for("/page")
    await transport.say(ADMIN, f"推送 {url}", room_id=OFFICE_ROOM)
    decimal = f"http://2130706433:{internal.port}/page"
    await transport.say(ADMIN, decimal)  # privately: kept as a draft
    await transport.say(ADMIN, "推送")
    await default_bot.send_pending()
    # Issue 13: no card goes out with the URL as its title; the office is told why and asked for one.
    assert [o for o in transport.sent if o.chat_id == LIAISON_ROOM] == []
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    assert office == [texts.t("push_title.need", why=why, url=url)]
    private = [o.text for o in transport.sent if o.chat_id == ADMIN.contact_id]
    assert private == [texts.t("push_title.draft_saved", why=why), texts.t("push_title.need_draft")]

    transport.sent.clear()
    await transport.say(ADMIN, f"推送 {url} 标题 反诈宣传", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "推送 标题 公安提醒")
    await default_bot.send_pending()
    cards = [o.link for o in transport.sent if o.chat_id == LIAISON_ROOM and o.link]
    assert [(c.url, c.title, c.description, c.thumbnail_url) for c in cards] == [
        (url, "反诈宣传", "", ""),
        (decimal, "公安提醒", "", ""),
    ]
    assert all(INTERNAL_TITLE not in (o.text + (o.link.title if o.link else "")) for o in transport.sent)
    assert internal.log == []
    with session(default_bot.units.engine) as s:
        assert INTERNAL_TITLE not in "".join(a.title + a.link_description for a in s.exec(select(Alert)))


async def test_the_feed_the_office_listed_is_read_while_previews_of_it_are_not(default_bot, transport, internal):
    assert await default_bot.poll_feeds() == 1
    with session(default_bot.units.engine) as s:
        [feed] = s.exec(select(Feed)).all()
        assert feed.last_error == "" and feed.last_ok_at is not None
    await transport.say(ADMIN, f"推送 {internal.url_for('/page')}", room_id=OFFICE_ROOM)
    await default_bot.send_pending()
    assert [r.path for r, _ in internal.log] == ["/rss"]


async def test_an_unreachable_public_page_asks_for_a_title_without_the_internal_note(default_bot, transport):
    # A page that cannot be read for another reason: a title is asked for, and nothing is said of the intranet.
    default_bot.http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(404)))
    url = "https://mp.example.cn/s/abc"
    await transport.say(ADMIN, f"推送 {url}", room_id=OFFICE_ROOM)
    await default_bot.send_pending()
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    texts = load_texts()
    assert office == [texts.t("push_title.need", why=texts.t("push_title.why_unread"), url=url)]


async def test_a_pushed_link_that_redirects_inside_is_not_pushed_without_a_title(
    default_bot, transport, internal, resolver
):
    names, _ = resolver
    names["short.example"] = "127.0.0.1"  # a link shortener the bot may reach, redirecting to the internal page
    internal.expect_request("/s/1").respond_with_response(
        Response(status=302, headers={"Location": f"http://127.0.0.1:{internal.port}/page"})
    )
    default_bot.http = guarded_client(["short.example"])
    url = f"http://short.example:{internal.port}/s/1"
    await transport.say(ADMIN, f"推送 {url}", room_id=OFFICE_ROOM)
    await default_bot.send_pending()
    await default_bot.http.aclose()
    assert [o for o in transport.sent if o.chat_id == LIAISON_ROOM] == []  # no card with the URL as title
    office = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM]
    texts = load_texts()
    assert office == [texts.t("push_title.need", why=texts.t("push_title.why_internal"), url=url)]
    assert [r.path for r, _ in internal.log] == ["/s/1"]
