"""A malformed database_url gives plain words, exit 2 and no password, from every command (issue 12 item 12)."""

from __future__ import annotations

import pytest

from bot.cli.database import DatabaseUrlError, cli_engine, database_url_problem, shown_url
from tests.bot_process import ROOT, relaybot

PASSWORD = "s3cret-Pw"
BAD_URLS = {
    "no colon": "sqlite//relaybot.db",
    "port not a number": f"postgresql://bot:{PASSWORD}@db.example:notaport/relaybot",
    "garbage": "not a url at all",
    "unknown driver": f"postgresql+nodriver://bot:{PASSWORD}@127.0.0.1/relaybot",
    "driver not installed": f"mysql://bot:{PASSWORD}@127.0.0.1/relaybot",
    "nothing listening": f"postgresql+psycopg://bot:{PASSWORD}@127.0.0.1:9/relaybot",
}
ROSTER = str(ROOT / "content" / "examples" / "roster_example.csv")
# Every subcommand that opens the database (run needs no gateway here: it fails on the database first).
COMMANDS = [
    ["status"],
    ["units"],
    ["units", "城关镇"],
    ["roster", "show"],
    ["roster", "import", ROSTER],
    ["report", "--day", "--out", "r.xlsx"],
    ["push", "刷单"],
    ["stats", "import", str(ROOT / "tests" / "data" / "stats_week.csv")],
    ["db", "upgrade"],
    ["db", "backup", "b.db"],
    ["run", "--console"],
    ["run", "--console", "--real-database"],
    ["run", "--clock", "2026-11-30 09:59"],
]


def _plain(result) -> str:
    both = result.stdout + result.stderr
    assert "Traceback" not in both and "╭" not in both, both  # no (rich) traceback
    assert PASSWORD not in both, both
    return both


@pytest.mark.parametrize("kind", sorted(BAD_URLS))
def test_status_and_doctor_explain_each_kind_of_bad_url(tmp_path, kind):
    url = BAD_URLS[kind]
    status = relaybot("status", db_url=url, cwd=tmp_path)
    assert status.returncode == 2, status.stdout + status.stderr
    assert "database_url" in _plain(status)
    doctor = relaybot(
        "doctor",
        "--timeout",
        "3",
        db_url=url,
        cwd=tmp_path,
        WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9",
        WECHATY_PUPPET_SERVICE_TOKEN="t",
    )
    out = _plain(doctor)
    assert doctor.returncode == 1
    assert any(line.startswith("✘ 数据库：") for line in doctor.stdout.splitlines()), out
    assert "✘ 网关" in doctor.stdout  # the doctor went on with the other checks
    assert "结论：有需要马上处理的问题（✘）。" in doctor.stdout


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:3]))
def test_every_command_exits_2_in_plain_words(tmp_path, args):
    if args[:2] == ["stats", "import"] and not (ROOT / "tests" / "data" / "stats_week.csv").exists():
        args = ["stats", "import", str(tmp_path / "s.csv")]
        (tmp_path / "s.csv").write_text("镇街,周期,案件类型,警情数\n城关镇,2026-W47,刷单返利,3\n", encoding="utf-8")
    result = relaybot(*args, db_url=BAD_URLS["port not a number"], cwd=tmp_path, stdin="/quit\n")
    out = _plain(result)
    assert result.returncode == 2, out
    assert "数据库地址有误（database_url / RELAYBOT_DATABASE_URL）：postgresql://bot:***@db.example:notaport" in out
    assert "端口不是数字" in out
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "r.xlsx").exists()


def test_the_url_is_shown_without_its_password_however_it_is_written():
    assert shown_url(f"postgresql+psycopg://bot:{PASSWORD}@h:5432/db") == "postgresql+psycopg://bot:***@h:5432/db"
    assert PASSWORD not in shown_url(f"postgresql://bot:{PASSWORD}@h:x/db")
    assert PASSWORD not in shown_url(f"postgresql://bot:p@{PASSWORD}@h/db")  # an @ inside the password
    assert PASSWORD not in shown_url(f"postgresql://h/db?user=bot&password={PASSWORD}")
    assert shown_url("sqlite:///data/relaybot.db") == "sqlite:///data/relaybot.db"


def test_a_good_url_makes_an_engine_and_a_missing_file_is_not_created(tmp_path):
    missing = tmp_path / "none" / "relaybot.db"
    assert database_url_problem(f"sqlite:///{missing}") is None
    assert not missing.parent.exists()  # checking makes no folder
    engine = cli_engine(f"sqlite:///{tmp_path / 'ok.db'}")
    engine.dispose()
    with pytest.raises(DatabaseUrlError, match="打不开数据库"):
        cli_engine(BAD_URLS["nothing listening"])
