"""Deployment files: the Dockerfile, .dockerignore, the systemd units and constraints.txt.

No Docker engine runs here, so the Dockerfile is parsed and its shell steps are run against stand-in commands
that record what they were asked to do; the systemd units go through `systemd-analyze verify` and
`systemd-analyze security --offline`, and their commands are run for real against a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.bot_process import ROOT, relaybot

DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "deploy" / "relaybot.service"
BACKUP_UNIT = ROOT / "deploy" / "relaybot-backup.service"
WEB_UNIT = ROOT / "deploy" / "relaybot-web.service"
BACKUP_TIMER = ROOT / "deploy" / "relaybot-backup.timer"
CONSTRAINTS = ROOT / "constraints.txt"
REGENERATE = "run deploy/update-constraints.sh after changing pyproject.toml"
INSTALLED_RELAYBOT = "/opt/relaybot/.venv/bin/relaybot"
STATE_DIR = "/var/lib/relaybot"


# ---------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return instructions


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _env(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


def test_dockerfile_base_user_volume_and_environment():
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    users = [args for kind, args in steps if kind == "USER"]
    assert users, "the container must not run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    last_user = max(i for i, (kind, _) in enumerate(steps) if kind == "USER")
    assert all(i > last_user for i, (kind, _) in enumerate(steps) if kind in ("CMD", "ENTRYPOINT", "HEALTHCHECK"))
    # The USER is the one the image creates (by name or uid).
    created = [
        re.search(r"useradd .*--uid (\d+) .*?(\S+)$", args.split("&&")[-1].strip())
        for kind, args in steps
        if kind == "RUN" and "useradd" in args
    ]
    assert len(created) == 1 and created[0], "one useradd --uid N ... NAME"
    uid, name = created[0].groups()
    assert user in (uid, name) and uid != "0"
    volumes = [v for kind, args in steps if kind == "VOLUME" for v in _exec_form(args)]
    assert volumes == ["/data"]
    env = {k: v for kind, args in steps if kind == "ENV" for k, v in _env(args).items()}
    # The database, the evidence and the Wechaty cache all live in the volume.
    assert env["RELAYBOT_DATABASE_URL"] == "sqlite:////data/relaybot.db"
    assert env["RELAYBOT_EVIDENCE_DIR"].startswith("/data/")
    assert env["RELAYBOT_CACHE_DIR"].startswith("/data/")
    assert env["RELAYBOT_LOG_FORMAT"] in ("json", "text")
    workdirs = [args for kind, args in steps if kind == "WORKDIR"]
    assert workdirs[-1] == "/data"  # python-wechaty writes ./.wechaty into the working directory
    # The volume's directory belongs to the bot's user before VOLUME freezes it.
    chown = next(
        i
        for i, (kind, args) in enumerate(steps)
        if kind == "RUN" and re.search(rf"chown ({name}|{uid})\b", args) and "/data" in args
    )
    assert chown < next(i for i, (kind, _) in enumerate(steps) if kind == "VOLUME")
    # No secret is baked into the image.
    assert not any("TOKEN" in k for k in env)


def test_every_copy_source_exists_and_is_not_dockerignored():
    copies = [args for kind, args in dockerfile() if kind in ("COPY", "ADD")]
    assert copies
    sources = []
    for args in copies:
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        sources += parts[:-1]
    ignore = _dockerignore()
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = (
            [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
        assert files, f"COPY {source} copies nothing"
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            assert not ignore(rel), f"{rel} is needed by COPY {source} but .dockerignore excludes it"
    # What the wheel is built from is copied (content/ and the migrations are its package data).
    for needed in ("pyproject.toml", "constraints.txt", "README.md", "bot", "handlers", "content", "scheduler.py"):
        assert needed in sources, needed
    assert (ROOT / "bot" / "storage" / "migrations").is_dir() and "bot" in sources


def _dockerignore():
    """A matcher for .dockerignore's patterns (anchored at the context root, * within one path segment, **)."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "keep .dockerignore simple: no exceptions"
        regex = ""
        text = line.strip("/")
        i = 0
        while i < len(text):
            if text.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif text.startswith("**", i):
                regex += ".*"
                i += 2
            elif text[i] == "*":
                regex += "[^/]*"
                i += 1
            elif text[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(text[i])
                i += 1
        patterns.append(re.compile(regex + r"\Z"))

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        return any(p.match(prefix) for p in patterns for prefix in prefixes)

    return ignored


def test_dockerignore_keeps_secrets_data_and_bulk_out_of_the_build_context():
    ignored = _dockerignore()
    for path in (
        ".git/config",
        ".venv/bin/python",
        "data/relaybot.db",
        "relaybot.toml",
        "cli.db",
        "tests/gateway/node_modules/x.js",
        "bot/__pycache__/app.cpython-311.pyc",
        ".wechaty/job.db",
    ):
        assert ignored(path), path
    for path in ("bot/runtime/app.py", "content/messages.toml", "constraints.txt", "pyproject.toml"):
        assert not ignored(path), path


FAKE_TOOLS = ("apt-get", "pip", "python", "relaybot", "groupadd", "useradd", "mkdir", "chown", "chmod", "rm")


def _fake_bin(tmp_path: Path, exit_codes: dict[str, int] | None = None) -> tuple[Path, Path]:
    """A directory of stand-ins that append their name and arguments to a log and exit as told."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in FAKE_TOOLS:
        code = (exit_codes or {}).get(tool, 0)
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexit {code}\n')
        script.chmod(0o755)
    return bin_dir, log


def _run_steps(tmp_path: Path, build_args: dict[str, str]) -> list[str]:
    """Run every RUN step of the Dockerfile in order, as /bin/sh would in the build, against the stand-ins."""
    bin_dir, log = _fake_bin(tmp_path)
    args = {}
    for kind, rest in dockerfile():
        if kind == "ARG":
            name, _, default = rest.partition("=")
            args[name] = build_args.get(name, default)
        elif kind == "RUN":
            # Only the stand-ins are on PATH, so nothing on this machine is installed, created or removed.
            done = subprocess.run(
                ["/bin/sh", "-c", rest], env={"PATH": str(bin_dir), **args}, capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0, f"RUN {rest}\n{done.stderr}"
    return log.read_text().splitlines()


def test_build_without_ocr_installs_with_the_constraints_and_no_system_libs(tmp_path):
    calls = _run_steps(tmp_path, {})
    installs = [c for c in calls if c.startswith("pip install")]
    assert installs == ["pip install -c constraints.txt ."]  # a normal install: content/ is package data
    assert not any(c.startswith("apt-get") for c in calls)
    assert "pip check" in calls
    assert (
        calls.index("pip install -c constraints.txt .")
        < calls.index("rm -rf /usr/src/relaybot")
        < calls.index("pip check")
    )
    steps = dockerfile()
    copied = [i for i, (kind, args) in enumerate(steps) if kind == "COPY" and "constraints.txt" in args]
    install_step = next(i for i, (kind, args) in enumerate(steps) if kind == "RUN" and "pip install" in args)
    assert copied and copied[0] < install_step


def test_build_with_ocr_installs_the_extra_and_opencv_system_libs(tmp_path):
    calls = _run_steps(tmp_path, {"OCR": "1"})
    apt = [c for c in calls if c.startswith("apt-get install")]
    assert len(apt) == 1 and {"libgl1", "libglib2.0-0"} <= set(apt[0].split())
    assert "--no-install-recommends" in apt[0]
    assert calls.index("apt-get update") < calls.index(apt[0])
    assert [c for c in calls if c.startswith("pip install")] == ["pip install -c constraints.txt .[ocr]"]
    assert any(c.startswith("python -c import cv2") for c in calls)


def _cmd_script() -> str:
    steps = dockerfile()
    assert not any(kind == "ENTRYPOINT" for kind, _ in steps)
    cmd = _exec_form(next(args for kind, args in reversed(steps) if kind == "CMD"))
    assert cmd[:2] == ["sh", "-c"] and len(cmd) == 3
    return cmd[2]


def test_container_start_upgrades_the_database_then_execs_the_bot(tmp_path):
    bin_dir, log = _fake_bin(tmp_path)
    done = subprocess.run(
        ["/bin/sh", "-c", _cmd_script()], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == ["relaybot db upgrade", "relaybot run"]
    assert "exec relaybot run" in _cmd_script()  # the bot, not the shell, gets docker stop's SIGTERM


def test_container_does_not_start_the_bot_when_the_upgrade_fails(tmp_path):
    bin_dir, log = _fake_bin(tmp_path, {"relaybot": 1})
    done = subprocess.run(
        ["/bin/sh", "-c", _cmd_script()], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert log.read_text().splitlines() == ["relaybot db upgrade"]


def test_healthcheck_runs_relaybot_doctor():
    checks = [args for kind, args in dockerfile() if kind == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert _exec_form(command) == ["relaybot", "doctor"]
    assert "--interval=" in options and "--timeout=" in options


@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "backup"], ["run"], ["doctor"]])
def test_commands_used_by_the_deployment_exist(tmp_path, command):
    """The Dockerfile and the units call these; `--help` fails with exit code 2 for an unknown command."""
    done = relaybot(*command, "--help", db_url=f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- systemd


def unit(path: Path) -> dict[str, list[str]]:
    """`Section.Key` -> values, in order."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return values


def _unescape(value: str) -> str:
    """systemd's escapes in Exec lines: %% is %, $$ is $."""
    return value.replace("%%", "%").replace("$$", "$")


def _rewritten_units(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the units whose commands point at an existing `relaybot` (this checkout) and state directory."""
    wrapper = tmp_path / "relaybot"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m bot "$@"\n')
    wrapper.chmod(0o755)
    state = tmp_path / "state"
    units = tmp_path / "units"
    units.mkdir()
    for source in (UNIT, BACKUP_UNIT, BACKUP_TIMER, WEB_UNIT):
        text = source.read_text(encoding="utf-8").replace(INSTALLED_RELAYBOT, str(wrapper))
        (units / source.name).write_text(text.replace(STATE_DIR, str(state)), encoding="utf-8")
    return units, state


def _verify(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=files[0].parent,
    )


def test_units_pass_systemd_analyze_verify_without_a_warning(tmp_path):
    units, _ = _rewritten_units(tmp_path)
    files = [units / UNIT.name, units / BACKUP_UNIT.name, units / BACKUP_TIMER.name, units / WEB_UNIT.name]
    done = _verify(*files)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stdout + done.stderr
    # The check is real here: a misspelt key or a bad value is reported.
    broken = units / "broken.service"
    broken.write_text(
        (units / UNIT.name)
        .read_text()
        .replace("Restart=always", "Restrat=always")
        .replace("ProtectSystem=strict", "ProtectSystem=strictly")
    )
    done = _verify(broken)
    assert "Unknown key" in done.stderr and "Restrat" in done.stderr
    assert "protect system value" in done.stderr


def test_unit_is_hardened_according_to_systemd_analyze_security(tmp_path):
    units, _ = _rewritten_units(tmp_path)
    for name in (UNIT.name, BACKUP_UNIT.name, WEB_UNIT.name):
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--no-pager", "--threshold=35", str(units / name)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=units,
        )
        overall = [line for line in done.stdout.splitlines() if "Overall exposure level" in line]
        assert done.returncode == 0 and overall and "OK" in overall[0], done.stdout[-2000:] + done.stderr


def test_unit_settings():
    u = unit(UNIT)
    assert u["Service.User"] == ["relaybot"] and u["Service.Group"] == ["relaybot"]
    assert u["Service.WorkingDirectory"] == [STATE_DIR]
    assert u["Service.EnvironmentFile"] == ["/etc/relaybot/env"]
    assert u["Service.ExecStartPre"] == [f"{INSTALLED_RELAYBOT} db upgrade"]
    assert u["Service.ExecStart"] == [f"{INSTALLED_RELAYBOT} run"]
    assert u["Service.Restart"] == ["always"] and int(u["Service.RestartSec"][0]) >= 5
    for key, value in (
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ):
        assert u[f"Service.{key}"] == [value], key
    assert STATE_DIR in u["Service.ReadWritePaths"][0].split()
    # A runaway (a bomb the caps missed, a leak) is stopped by the kernel instead of taking the server down.
    mib = {"K": 1 / 1024, "M": 1, "G": 1024}
    limits = {k: float(u[f"Service.{k}"][0][:-1]) * mib[u[f"Service.{k}"][0][-1]] for k in ("MemoryHigh", "MemoryMax")}
    assert 512 <= limits["MemoryHigh"] < limits["MemoryMax"] <= 4096, limits
    assert 64 <= int(u["Service.TasksMax"][0]) <= 4096
    env = dict(v.split("=", 1) for v in u["Service.Environment"])
    # Everything the bot writes is inside the one writable directory.
    assert env["RELAYBOT_DATABASE_URL"] == f"sqlite:///{STATE_DIR}/relaybot.db"
    for key in ("RELAYBOT_EVIDENCE_DIR", "RELAYBOT_CACHE_DIR"):
        assert env[key].startswith(STATE_DIR + "/"), key
    assert u["Install.WantedBy"] == ["multi-user.target"]
    t = unit(BACKUP_TIMER)
    assert t["Timer.OnCalendar"] and t["Timer.Persistent"] == ["true"]
    assert t["Install.WantedBy"] == ["timers.target"]
    b = unit(BACKUP_UNIT)
    assert b["Service.User"] == ["relaybot"] and b["Service.Type"] == ["oneshot"]
    assert (
        dict(v.split("=", 1) for v in b["Service.Environment"])["RELAYBOT_DATABASE_URL"] == env["RELAYBOT_DATABASE_URL"]
    )


def _unit_env(path: Path, state: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin"}
    for value in unit(path).get("Service.Environment", []):
        key, _, val = value.partition("=")
        env[key] = val
    env["RELAYBOT_CONFIG"] = str(state / "absent.toml")  # /etc/relaybot/relaybot.toml is optional
    return env


def test_the_units_commands_upgrade_and_back_up_a_real_database(tmp_path):
    """ExecStartPre of the bot, then the backup service's ExecStart and ExecStartPost, as systemd would run them."""
    units, state = _rewritten_units(tmp_path)
    state.mkdir()
    bot_unit, backup_unit = units / UNIT.name, units / BACKUP_UNIT.name
    env = _unit_env(bot_unit, state)
    assert env["RELAYBOT_DATABASE_URL"] == f"sqlite:///{state}/relaybot.db"
    upgrade = subprocess.run(
        shlex.split(_unescape(unit(bot_unit)["Service.ExecStartPre"][0])),
        env=env,
        cwd=state,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert (state / "relaybot.db").is_file()

    backups = state / "backups"
    backups.mkdir()
    stale = backups / "relaybot-2020-01-01-0230.db"
    stale.write_bytes(b"old")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(stale, (forty_days_ago, forty_days_ago))
    b = unit(backup_unit)
    env = _unit_env(backup_unit, state)
    for line in b["Service.ExecStart"] + b["Service.ExecStartPost"]:
        done = subprocess.run(
            shlex.split(_unescape(line)), env=env, cwd=state, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
    made = sorted(p.name for p in backups.iterdir())
    assert len(made) == 1 and re.fullmatch(r"relaybot-\d{4}-\d{2}-\d{2}-\d{4}\.db", made[0]), made
    import sqlite3

    with sqlite3.connect(backups / made[0]) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] > 5


# ---------------------------------------------------------------- constraints.txt


def constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name and version and " " not in line, f"not a name==version pin: {line!r}"
        assert canonicalize_name(name) not in pins, f"pinned twice: {name}"
        pins[canonicalize_name(name)] = version
    return pins


# Never in constraints.txt (deploy/update-constraints.sh leaves them out): a venv brings its own.
BUILD_TOOLS = ("pip", "setuptools", "wheel")


def test_constraints_pin_the_whole_dependency_tree_consistently():
    """Every package relaybot[test,ocr] needs, directly or not, is pinned, to a version that fits every requirement."""
    pins = constraints()
    assert "relaybot" not in pins, "the project must not constrain itself"
    for tool in BUILD_TOOLS:
        assert tool not in pins
    seen, todo = set(), [("relaybot", {"test", "ocr"})]
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), frozenset(extras))
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            dep = canonicalize_name(req.name)
            if dep in BUILD_TOOLS:  # pinned in pyproject itself (the test extra's setuptools builds the wheel)
                continue
            assert dep in pins, f"{req.name} (needed by {name}) is missing from constraints.txt: {REGENERATE}"
            assert req.specifier.contains(pins[dep], prereleases=True), (
                f"constraints.txt pins {req.name}=={pins[dep]}, but {name} requires {req}: {REGENERATE}"
            )
            todo.append((req.name, set(req.extras)))
    needed = {name for name, _ in seen} - {"relaybot"}
    assert len(needed) > 50  # the walk really went down the tree
    unused = set(pins) - needed
    assert not unused, f"pinned but not needed by relaybot[test,ocr]: {sorted(unused)}: {REGENERATE}"
    # The tests run in the locked environment (run.sh installs with -c constraints.txt).
    drift = {name: (metadata.version(name), pins[name]) for name in needed if metadata.version(name) != pins[name]}
    assert not drift, f"installed versions differ from constraints.txt (installed, pinned): {drift}"


def test_direct_pins_in_pyproject_match_constraints():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = constraints()
    direct = project["dependencies"] + [r for extra in ("test", "ocr") for r in project["optional-dependencies"][extra]]
    for text in direct:
        req = Requirement(text)
        if canonicalize_name(req.name) in BUILD_TOOLS:
            continue
        assert req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True), text


def test_update_script_is_valid_and_excludes_the_project():
    script = ROOT / "deploy" / "update-constraints.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "--exclude-editable" in text and "relaybot" in text and ".[test,ocr]" in text
    assert "pip check" in text


def test_relaybot_admin_runs_a_command_as_the_service_would(tmp_path):
    """deploy/relaybot-admin takes user, directory and environment from systemd's view of the unit."""
    u = unit(UNIT)
    env_file = tmp_path / "env"
    env_file.write_text("# the token\nWECHATY_PUPPET_SERVICE_TOKEN=puppet_abc123\nRELAYBOT_LOG_FORMAT=text\n")
    workdir = tmp_path / "state"
    workdir.mkdir()
    answers = {  # EnvironmentFiles first: the fake matches with shell patterns, in order
        "EnvironmentFiles": f"{env_file} (ignore_errors=no)",
        "Environment": " ".join(u["Service.Environment"]),
        "User": u["Service.User"][0],
        "WorkingDirectory": str(workdir),
    }
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    cases = "".join(f'  *--property={k}*) echo "{v}" ;;\n' for k, v in answers.items())
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\ncase "$*" in\n{cases}  *) exit 1 ;;\nesac\n')
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")
    (bin_dir / "runuser").write_text(
        f'#!/bin/sh\n{{ echo "$*"; pwd; echo "$RELAYBOT_DATABASE_URL"; echo "$WECHATY_PUPPET_SERVICE_TOKEN"; '
        f'echo "$RELAYBOT_LOG_FORMAT"; }} > "{log}"\n'
    )
    for tool in ("systemctl", "id", "runuser"):
        (bin_dir / tool).chmod(0o755)
    done = subprocess.run(
        [str(ROOT / "deploy" / "relaybot-admin"), "roster", "import", "/tmp/名单.xlsx"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    args, cwd, db_url, token, log_format = log.read_text().splitlines()
    assert args == f"-u relaybot -- {INSTALLED_RELAYBOT} roster import /tmp/名单.xlsx"
    assert cwd == str(workdir)
    assert db_url == f"sqlite:///{STATE_DIR}/relaybot.db"
    assert token == "puppet_abc123"
    assert log_format == "text"  # the environment file wins over Environment=, as in systemd

    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    refused = subprocess.run(
        [str(ROOT / "deploy" / "relaybot-admin"), "doctor"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1 and "sudo" in refused.stderr
