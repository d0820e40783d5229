"""Forms the console cannot read (issue 14): past Starlette's multipart limits (too many fields or files, a part
too long), broken multipart, or not a multipart form on an upload route. Each gets the console's Chinese refusal
page, never Starlette's English 400, and changes nothing."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.storage.db import session
from bot.storage.models import AuditLog, BotState, IncidentStat, Liaison, Outbox, Unit
from tests.web.conftest import csrf_of, pre_token

TOO_MANY = "表单里的字段或文件太多，什么都没有改"
TOO_LONG = "表单里有一项内容太长，什么都没有改"
BROKEN = "表单内容不完整或格式不对，什么都没有改"
NOT_UPLOAD = "这不是网页上的文件上传表单，什么都没有改"
ROSTER = "单位,类别,联络员\n城关镇,镇街,王芳\n".encode()
PART_LIMIT = 1024 * 1024  # Starlette's own limit on one non-file part


def everything(served) -> list:
    """What a refused form must leave as it was: units, liaisons, figures, audit log, outbox, held uploads."""
    with session(served.engine) as s:
        return [
            [(u.id, u.name, u.active) for u in s.exec(select(Unit).order_by(col(Unit.id)))],
            [(li.id, li.name, li.phone, li.contact_id) for li in s.exec(select(Liaison).order_by(col(Liaison.id)))],
            len(s.exec(select(IncidentStat)).all()),
            len(s.exec(select(AuditLog)).all()),
            len(s.exec(select(Outbox)).all()),
            [b.key for b in s.exec(select(BotState).order_by(col(BotState.key)))],
        ]


def a_liaison(served) -> int:
    with session(served.engine) as s:
        return int(s.exec(select(Liaison.id).order_by(col(Liaison.id))).first() or 0)


def refused(r, status: int, sentence: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="refused"' in r.text and sentence in r.text, r.text[:500]
    for english in ("Too many", "exceeded", "Invalid", "boundary", "multipart", "Bad Request"):
        assert english not in r.text


def multipart(parts: list[tuple[str, str, bytes]], boundary: str = "b0undary") -> tuple[bytes, dict]:
    """A multipart body by hand: (field name, file name or "" for a field, content) per part."""
    out = b""
    for name, file_name, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{file_name}"' if file_name else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("route", ["/roster/upload", "/incidents/upload"])
def test_an_upload_past_starlettes_limits_or_broken_gets_the_chinese_refusal(served, route):
    c = served.sign_in()
    csrf = csrf_of(c.get("/roster").text)
    before = everything(served)
    csrf_part = ("csrf", "", csrf.encode())
    file_part = ("file", "名单.csv".encode().decode("latin-1"), ROSTER)

    # Too many fields: Starlette's 1000.
    body, headers = multipart([csrf_part, file_part] + [(f"f{i}", "", b"x") for i in range(1001)])
    refused(c.post(route, content=body, headers=headers), 400, TOO_MANY)
    # Too many files: Starlette's 1000.
    body, headers = multipart([csrf_part] + [("file", f"{i}.csv", b"a") for i in range(1001)])
    refused(c.post(route, content=body, headers=headers), 400, TOO_MANY)
    # One field past Starlette's limit on a part (the file itself may be larger, up to the upload cap).
    body, headers = multipart([csrf_part, ("note", "", b"x" * (PART_LIMIT + 1)), file_part])
    refused(c.post(route, content=body, headers=headers), 400, TOO_LONG)
    # Broken multipart: a part without a name, a body that is no multipart at all, no boundary.
    body, headers = multipart([csrf_part, ("", "", b"x")])
    body = body.replace(b'form-data; name=""', b"form-data")
    refused(c.post(route, content=body, headers=headers), 400, BROKEN)
    body, headers = multipart([csrf_part, file_part])
    refused(
        c.post(route, content=body.replace(b"Content-Disposition:", b"Content-Disposition"), headers=headers),
        400,
        BROKEN,
    )
    refused(c.post(route, content=body.replace(b"--b0undary", b"--b0undarX"), headers=headers), 400, BROKEN)
    refused(c.post(route, content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400, BROKEN)
    # Not a multipart form at all on an upload route.
    refused(c.post(route, data={"csrf": csrf}), 415, NOT_UPLOAD)
    refused(c.post(route, json={"csrf": csrf, "file": "x"}), 415, NOT_UPLOAD)
    refused(c.post(route, content=ROSTER, headers={"content-type": "text/csv"}), 415, NOT_UPLOAD)
    refused(c.post(route, content=ROSTER, headers={"content-type": ""}), 415, NOT_UPLOAD)
    assert everything(served) == before
    # The same page still takes a good upload afterwards.
    r = c.post(route, data={"csrf": csrf}, files={"file": ("名单.csv", ROSTER, "text/csv")})
    assert r.status_code in (200, 400) and 'id="refused"' not in r.text


def test_a_plain_form_past_starlettes_limits_gets_the_chinese_refusal(served):
    c = served.sign_in()
    csrf = csrf_of(c.get("/roster").text)
    route = f"/roster/liaisons/{a_liaison(served)}"
    fields = {"csrf": csrf, "name": "王芳", "phone": "13800000099", "role": "主"}
    before = everything(served)
    many = fields | {f"f{i}": "x" for i in range(1001)}
    refused(c.post(route, data=many), 400, TOO_MANY)
    refused(c.post(route, data=fields | {"note": "x" * (PART_LIMIT + 1)}), 400, TOO_LONG)
    body, headers = multipart([(k, "", v.encode()) for k, v in many.items()])
    refused(c.post(route, content=body, headers=headers), 400, TOO_MANY)
    refused(c.post(route, content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400, BROKEN)
    assert everything(served) == before
    r = c.post(route, data=fields)  # the same form, read: changed
    assert r.status_code == 200, r.text
    assert everything(served) != before


def test_the_sign_in_forms_past_starlettes_limits_get_the_chinese_refusal(served):
    c = served.client()
    pre = pre_token(c)
    before = everything(served)
    many = {"pre": pre, "typed": "wxid_admin"} | {f"f{i}": "x" for i in range(1001)}
    for route in ("/login/code", "/login/verify", "/login/link"):
        refused(c.post(route, data=many), 400, TOO_MANY)
        refused(c.post(route, content=b"--x\r\n", headers={"content-type": "multipart/form-data"}), 400, BROKEN)
    assert everything(served) == before
