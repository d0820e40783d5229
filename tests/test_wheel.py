"""The wheel works on its own: built from the checkout, installed into a fresh venv, run from a folder far from
the checkout. It fails when a file the bot reads at run time (content/, alembic's migrations) is not in it."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401 - fills SQLModel.metadata with the tables the code uses
from bot.storage.db import make_engine, schema_revisions
from tests.bot_process import ROOT
from tests.conftest import POSTGRES_URL, on_postgres

pytestmark = pytest.mark.slow

# What the Dockerfile copies too: the wheel is built from these alone, so a stale build/ in the checkout or a
# file that only exists there cannot make it pass.
SOURCES = ("pyproject.toml", "README.md", "bot", "handlers", "content", "scheduler.py")


def _run(
    args: list, *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """relaybot-*.whl, built from a copy of the sources with the test venv's setuptools (no download)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            work / "dist",
            src,
        ],
        cwd=work,
    )
    (built,) = (work / "dist").glob("relaybot-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (not editable); its dependencies come from this test's venv through
    a .pth line, which adds that site-packages after the venv's own, so `bot` is the installed copy."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", folder], cwd=folder.parent)
    python = folder / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            wheel,
        ],
        cwd=folder.parent,
    )
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=folder.parent)
    Path(purelib.stdout.strip(), "zz_relaybot_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return folder


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working folder outside the checkout, with nothing of the project in it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    assert ROOT not in folder.parents
    return folder


@pytest.fixture
def empty_db_url(tmp_path, request) -> str:
    """An empty database (no tables): an SQLite file, or a new PostgreSQL database in the suite's second run."""
    if not on_postgres():
        yield f"sqlite:///{tmp_path / 'wheel.db'}"
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = request.getfixturevalue("_postgres_admin")
    name = f"w_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _env(db_url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYBOT_") and k != "PYTHONPATH"}
    env.update(
        RELAYBOT_DATABASE_URL=db_url,
        RELAYBOT_CONFIG=str(folder / "absent.toml"),
        RELAYBOT_EVIDENCE_DIR=str(folder / "evidence"),
    )
    return env


def test_the_wheel_carries_every_file_the_bot_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = [p for p in (ROOT / "content").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    needed += [
        p for p in (ROOT / "bot" / "storage" / "migrations").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    assert any(p.name == "script.py.mako" for p in needed) and any(p.suffix == ".csv" for p in needed)
    missing = sorted(p.relative_to(ROOT).as_posix() for p in needed if p.relative_to(ROOT).as_posix() not in names)
    assert not missing, f"not in {wheel.name}: {missing}"
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)


def test_installed_wheel_upgrades_a_database_and_runs_the_demo_from_anywhere(venv, elsewhere, empty_db_url):
    env = _env(empty_db_url, elsewhere)
    python, relaybot = venv / "bin" / "python", venv / "bin" / "relaybot"

    where = _run(
        [
            python,
            "-c",
            "import bot, content, handlers, scheduler; "
            "print(bot.__file__, content.__file__, handlers.__file__, scheduler.__file__)",
        ],
        cwd=elsewhere,
        env=env,
    ).stdout.split()
    assert all(Path(w).is_relative_to(venv) for w in where), where  # the installed copy, not the checkout

    upgraded = _run([relaybot, "db", "upgrade"], cwd=elsewhere, env=env)
    engine = make_engine(empty_db_url)
    try:
        current, head = schema_revisions(engine)
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert current == head and head in upgraded.stdout, upgraded.stdout
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}

    demo = _run([relaybot, "demo"], cwd=elsewhere, env=env, timeout=180)
    out = demo.stdout
    assert "导入名单 content/examples/roster_example.csv：新增单位 6" in out  # the example roster, from the wheel
    assert "【反诈预警 #1】" in out and "【防范提示】" in out  # the alert library
    assert "已推送 #1" in out  # a sentence from content/messages.toml
    assert ".png (" in out and ".xlsx (" in out, out[-2000:]  # the report, rendered by `python -m bot.reports.worker`
    assert "失败" not in demo.stderr, demo.stderr

    # The doctor finds the upgraded database; it exits 1 here because no gateway or admins are configured.
    doctor = subprocess.run([relaybot, "doctor"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert f"✔ 数据库：结构版本 {head}" in doctor.stdout, doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr, doctor.stderr
