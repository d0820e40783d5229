"""The web console's 审计日志 over a real HTTP server (issue 14): newest first, 50 a page, filters by action and by
person, refused actions marked, long details shortened on the list and capped on their own page, held roster files
never printed; viewers may look; details are shown as text."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

from bot.domain.relay import audit
from bot.storage.db import session
from bot.storage.models import AuditLog
from tests.web.conftest import VIEWER_ID


def shown(response) -> str:
    """A page as read: its HTML without the <wbr> break hints long texts get (so a phone's screen holds them)."""
    return response.text.replace("<wbr>", "")


def add(
    served, n: int, *, action: str = "push", actor_id: str = "wxid_someone", actor_name: str = "某人", **kw
) -> None:
    start = served.clock() - timedelta(days=1)
    with session(served.engine) as s:
        for i in range(n):
            audit(
                s,
                now=start + timedelta(seconds=i),
                actor_id=actor_id,
                actor_name=actor_name,
                action=action,
                detail=kw.get("detail", f"第{i}条"),
                allowed=kw.get("allowed", True),
            )
        s.commit()


def entries(html: str) -> list[str]:
    """The ids of the rows shown on a list page, in order (pages are read with their <wbr> break hints taken out)."""
    return re.findall(r'<tr id="a(\d+)"', html)


def add_row(served, **fields) -> int:
    with session(served.engine) as s:
        row = AuditLog(at=served.clock() - timedelta(hours=1), **fields)
        s.add(row)
        s.commit()
        return int(row.id or 0)


def test_newest_first_fifty_a_page(served):
    add(served, 120)
    c = served.sign_in(VIEWER_ID)  # viewers may look
    first = c.get("/audit")
    assert first.status_code == 200
    on_first = entries(shown(first))
    assert len(on_first) == 50
    ids = [int(x) for x in on_first]
    assert ids == sorted(ids, reverse=True)
    assert "第119条" in shown(first) and "第69条" not in shown(first)
    total = int(re.search(r"共 (\d+) 条", shown(first)).group(1))
    assert total >= 122  # the 120 and the two sign-ins
    assert 'id="older"' in shown(first) and 'id="newer"' not in shown(first)
    second = c.get("/audit?page=2")
    assert len(entries(shown(second))) == 50 and not set(entries(shown(second))) & set(on_first)
    last_page = (total + 49) // 50
    last = c.get(f"/audit?page={last_page}")
    assert len(entries(shown(last))) == total - 50 * (last_page - 1)
    assert 'id="older"' not in shown(last) and 'id="newer"' in shown(last)
    assert entries(shown(c.get("/audit?page=999"))) == []
    assert c.get("/audit?page=abc").status_code == 200  # a bad page number is the first page


def test_filters_by_action_and_by_person(served):
    add(served, 3, action="withdraw", actor_id="wxid_wangfang", actor_name="王芳")
    add(served, 2, action="withdraw", actor_id="wxid_other", actor_name="别人")
    add(served, 4, action="deadline", actor_id="wxid_wangfang", actor_name="王芳")
    c = served.sign_in()
    assert len(entries(shown(c.get("/audit", params={"action": "withdraw"})))) == 5
    assert len(entries(shown(c.get("/audit", params={"person": "王芳"})))) == 7
    assert len(entries(shown(c.get("/audit", params={"person": "wxid_wangfang"})))) == 7
    assert len(entries(shown(c.get("/audit", params={"action": "withdraw", "person": "王"})))) == 3
    assert entries(shown(c.get("/audit", params={"person": "%"}))) == []  # a LIKE wildcard is only a character
    page = shown(c.get("/audit", params={"action": "deadline", "person": "王芳"}))
    assert '<option value="deadline" selected>' in page and 'value="王芳"' in page
    # paging keeps the filters
    add(served, 60, action="remind")
    page = shown(c.get("/audit", params={"action": "remind"}))
    assert "/audit?action=remind&amp;person=&amp;page=2" in page


def test_refused_actions_are_marked(served):
    refused = add_row(served, actor_id="wxid_x", actor_name="陌生人", action="web_login", detail="错", allowed=False)
    command = add_row(served, actor_id="wxid_x", action="refused:推送", detail="推送 刷单", allowed=False)
    page = shown(served.sign_in().get("/audit"))
    row = re.search(rf'<tr id="a{refused}" class="(\w+)">(.*?)</tr>', page, re.S)
    assert row and row.group(1) == "refused" and "网页登录<strong" in row.group(2) and "被拒绝" in row.group(2)
    row = re.search(rf'<tr id="a{command}" class="refused">(.*?)</tr>', page, re.S)
    assert row and "被拒绝的命令：推送" in row.group(1)
    assert '<option value="refused:推送" >被拒绝的命令：推送</option>' in page
    assert '<option value="web_login" >网页登录</option>' in page


def test_long_details_are_shortened_and_capped_and_held_files_never_printed(served):
    long_id = add_row(served, action="note", detail="甲" * 300 + "乙" * 6000)
    data = base64.b64encode(b"SECRETROSTERBYTES" * 100).decode()
    held = add_row(
        served, action="web_roster_held", detail=json.dumps({"file": "名单.csv", "data": data}, ensure_ascii=False)
    )
    chat_held = add_row(
        served,
        action="roster_held",
        detail=json.dumps({"file": "群里的名单.xlsx", "rows": [["城关镇", "13800000001"]]}, ensure_ascii=False),
    )
    c = served.sign_in()
    page = shown(c.get("/audit"))
    assert "甲" * 200 + "…" in page and "甲" * 201 not in page
    assert data[:40] not in page and "13800000001" not in page
    assert "暂存的名单文件“名单.csv”" in page and "暂存的名单文件“群里的名单.xlsx”" in page
    one = c.get(f"/audit/{long_id}")
    assert one.status_code == 200
    assert "甲" * 300 + "乙" * 4700 + "…" in shown(one) and "乙" * 4701 not in shown(one)
    assert "只显示前 5000 个字" in shown(one)
    for row_id in (held, chat_held):
        text = shown(c.get(f"/audit/{row_id}"))
        assert data[:40] not in text and "13800000001" not in text and "内容不显示" in text
    assert c.get("/audit/999999").status_code == 404
    assert c.get("/audit/abc").status_code == 404


def test_details_and_names_are_shown_as_text(served):
    evil = add_row(
        served,
        actor_id="wxid_<i>x</i>",
        actor_name="<b>坏人</b>",
        action="<u>act</u>",
        detail="<script>alert(1)</script>",
    )
    c = served.sign_in()
    for html in (shown(c.get("/audit")), shown(c.get(f"/audit/{evil}"))):
        assert "<script>alert(1)</script>" not in html and "<b>坏人</b>" not in html and "<u>act</u>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;坏人&lt;/b&gt;" in html


def test_without_a_session_the_log_is_not_shown(served):
    add(served, 1, detail="秘密的内容")
    c = served.client()
    for path in ("/audit", "/audit/1", "/settings", "/incidents"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert "秘密的内容" not in shown(r)
