"""`relaybot doctor` and `relaybot status`: plain-words checks, run as a new user would run them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.runtime.health import LINK_DOWN, SEND_DOWN
from bot.storage.db import make_engine, session
from bot.storage.models import BotState
from tests.bot_process import ROOT, relaybot
from tests.e2e.test_e2e import ADMIN, LIAISON_ROOM, WANG, bot, gateway  # noqa: F401  (fixtures)


def _doctor(db_url, tmp_path, **env):
    base = {
        "RELAYBOT_ADMIN_IDS": ADMIN[0],
        "RELAYBOT_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "RELAYBOT_NOTIFY_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        "RELAYBOT_SELF_CHECK_TARGET": "filehelper",
    }
    return relaybot("doctor", "--timeout", "3", db_url=db_url, cwd=tmp_path, **{**base, **env})


def _lines(result, mark):
    return [line for line in result.stdout.splitlines() if line.startswith(mark)]


def test_a_healthy_setup_passes_and_says_so(gateway, db_url, tmp_path):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    result = _doctor(
        db_url,
        tmp_path,
        WECHATY_PUPPET_SERVICE_ENDPOINT=gateway.endpoint,
        WECHATY_PUPPET_SERVICE_TOKEN=gateway.token,
        RELAYBOT_LIAISON_GROUPS="全区反诈联络员群",
        RELAYBOT_OFFICE_GROUP="反诈办工作群",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _lines(result, "✘") == []
    assert f"✔ 网关：微信网关 {gateway.endpoint} 正常，token 有效。" in result.stdout
    assert "✔ 名单：6 个单位" in result.stdout
    assert "结论：可以正常工作。" in result.stdout
    assert gateway.token not in result.stdout + result.stderr


def test_wrong_token_unreachable_gateway_and_missing_settings_are_named(gateway, db_url, tmp_path):
    wrong = _doctor(
        db_url,
        tmp_path,
        WECHATY_PUPPET_SERVICE_ENDPOINT=gateway.endpoint,
        WECHATY_PUPPET_SERVICE_TOKEN="not-the-token-123",
    )
    assert wrong.returncode == 1
    assert any("拒绝了 token" in line for line in _lines(wrong, "✘ 网关"))
    assert "not-the-token-123" not in wrong.stdout + wrong.stderr

    down = _doctor(db_url, tmp_path, WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9", WECHATY_PUPPET_SERVICE_TOKEN="t")
    assert down.returncode == 1
    assert any("端口没有在监听" in line for line in _lines(down, "✘ 网关"))

    bare = _doctor(
        db_url,
        tmp_path,
        RELAYBOT_ADMIN_IDS="",
        RELAYBOT_TIMEZONE="Mars/Olympus",
        RELAYBOT_NOTIFY_URL="ftp://robot",
        RELAYBOT_SELF_CHECK_TARGET="",
    )
    assert bare.returncode == 1
    errors = "\n".join(_lines(bare, "✘ 配置"))
    for words in ("没有设置管理员", "Mars/Olympus", "WECHATY_PUPPET_SERVICE_TOKEN", "notify_url"):
        assert words in errors
    assert any("自检" in line for line in _lines(bare, "! 配置"))
    assert any("联络员名单" in line for line in _lines(bare, "! 名单"))
    assert not (tmp_path / "evidence").exists()  # the doctor looks; it does not make folders

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = _doctor(db_url, tmp_path, RELAYBOT_EVIDENCE_DIR=str(blocked / "evidence"))
    assert any("截图文件夹" in line and "不能写入" in line for line in _lines(result, "✘ 配置"))


def test_database_problems_are_explained_without_changing_anything(db_url, tmp_path):
    empty = f"sqlite:///{tmp_path / 'none' / 'relaybot.db'}"
    result = _doctor(empty, tmp_path, WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9", WECHATY_PUPPET_SERVICE_TOKEN="t")
    assert any("还不存在" in line for line in _lines(result, "! 数据库"))
    assert not (tmp_path / "none" / "relaybot.db").exists()

    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    engine.dispose()
    result = _doctor(db_url, tmp_path)
    assert result.returncode == 1
    assert any("9999_future" in line for line in _lines(result, "✘ 数据库"))


def test_what_the_bot_recorded_about_its_health_shows_in_doctor_and_status(db_url, tmp_path):
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    with session(engine) as s:
        s.add(BotState(key=LINK_DOWN, value=(now - timedelta(minutes=30)).isoformat(), updated_at=now))
        s.add(BotState(key=SEND_DOWN, value=(now - timedelta(minutes=25)).isoformat(), updated_at=now))
        s.commit()
    engine.dispose()
    result = _doctor(db_url, tmp_path, WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9", WECHATY_PUPPET_SERVICE_TOKEN="t")
    assert result.returncode == 1
    runtime = "\n".join(_lines(result, "✘ 运行"))
    assert "微信连接断开已 30 分钟" in runtime and "自检消息发不出去已 25 分钟" in runtime
    status = relaybot("status", db_url=db_url, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "⚠ 微信连接断开，自 " in status.stdout and "⚠ 发不出消息，自 " in status.stdout


def test_doctor_beside_a_running_bot_does_not_disturb_it(gateway, bot, tmp_path):
    bot.start()
    result = relaybot(
        "doctor",
        db_url=bot.db_url,
        cwd=tmp_path,
        RELAYBOT_ADMIN_IDS=ADMIN[0],
        WECHATY_PUPPET_SERVICE_ENDPOINT=gateway.endpoint,
        WECHATY_PUPPET_SERVICE_TOKEN=gateway.token,
    )
    assert "✔ 网关" in result.stdout, result.stdout + result.stderr
    # The bot's event stream survived the doctor's gRPC call: a command still gets its answer.
    mark = len(gateway.sent())
    gateway.say(WANG[0], "帮助", room=LIAISON_ROOM)
    gateway.wait_sent(lambda items: any(i["conversation_id"] == LIAISON_ROOM for i in items), since=mark, timeout=10)
    status = relaybot("status", db_url=bot.db_url, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "最近一次成功发送：还没有" not in status.stdout
