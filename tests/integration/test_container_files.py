"""The container files, checked as far as a machine without a container engine allows.

What a build would send (the ignore file, read by Docker's rules), that the relay builds from
exactly that, what the image declares, that its health check command tells a working relay
from a broken one, that the Postfix image's configuration step gives a working Postfix
configuration (real postconf and postmap), that the compose file says what README.md says,
and that time zones work without the system's zoneinfo (as on python:3.11-slim).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import yaml

from relay import config as config_module
from tests.conftest import Relay
from tests.support.dockerignore import build_context
from tests.support.postfix import postfix_instance
from tests.support.serving import serving

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "deploy" / "container"
DATA = "/var/lib/penpal-relay"
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 -- inside a container; the published ports decide


def _instructions(containerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in containerfile.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
            pending = ""
    return found


def _final_stage(containerfile: Path) -> list[tuple[str, str]]:
    steps = _instructions(containerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CONTAINER / "compose.yaml").read_text())
    return loaded


# --- the build context ----------------------------------------------------------------------


def test_docker_and_podman_read_the_same_ignore_file() -> None:
    assert (ROOT / ".containerignore").read_text() == (ROOT / ".dockerignore").read_text()


def test_the_build_context_leaves_out_data_keys_environments_caches_and_tests(
    tmp_path: Path,
) -> None:
    planted = [
        "var/secret.key", "var/dkim/penpal1.key", "var/maildir/new/1", "var/relay.log",
        ".venv/bin/python", ".venv-main/bin/python", ".git/config", "build/lib/relay/app.py",
        "test-output/results.xml", "penpal_relay.egg-info/PKG-INFO",
        "relay/__pycache__/app.cpython-311.pyc", "relay/dkim.key", ".pytest_cache/v",
        ".mypy_cache/x", ".ruff_cache/x", ".hypothesis/x", "tests/test_x.py",
        "tests/messages/a.eml", "deploy/container/config/config.toml",
        "deploy/container/config/smtp-password", "deploy/postfix/key.pem", "secret.key",
        "docs/deploy.md", "bench/run.py", "notes.txt",
        # what the images are built from
        "pyproject.toml", "README.md", "config.toml", "relay/app.py",
        "templates/email/en/held.txt", "deploy/container/Containerfile",
        "deploy/postfix/transport",
    ]  # fmt: skip
    for name in planted:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    assert build_context(tmp_path) == {
        "pyproject.toml", "README.md", "config.toml", "relay/app.py",
        "templates/email/en/held.txt", "deploy/container/Containerfile",
        "deploy/postfix/transport",
    }  # fmt: skip


def test_the_build_context_of_this_checkout_holds_no_data_key_or_environment() -> None:
    sent = build_context(ROOT)
    for name in sent:
        top = name.split("/")[0]
        assert top in {"pyproject.toml", "README.md", "config.toml", "relay", "templates",
                       "deploy"}, name  # fmt: skip
        assert not name.endswith((".key", ".pem", ".pyc")) and "__pycache__" not in name, name
    assert {"deploy/container/Containerfile", "deploy/postfix/install.sh"} <= sent


def test_the_relay_builds_from_the_build_context_alone(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for name in build_context(ROOT):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run(
        [sys.executable, "-m", *command, str(context)], check=True, capture_output=True, timeout=300
    )
    (wheel,) = tmp_path.glob("penpal_relay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (ROOT / "relay").rglob("*.py"):
        assert str(module.relative_to(ROOT)) in names, module
    for template in (ROOT / "templates").rglob("*"):
        if template.is_file():
            assert f"relay/templates/{template.relative_to(ROOT / 'templates')}" in names
    assert any(n.endswith("share/penpal-relay/config.toml") for n in names)


# --- the relay's image ----------------------------------------------------------------------


def test_the_relay_image_runs_unprivileged_with_its_data_on_a_volume() -> None:
    final = _final_stage(CONTAINER / "Containerfile")
    words = dict(final)
    assert final[0] == ("FROM", "python:3.11-slim")
    user = words["USER"].split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user), words["USER"]
    assert words["VOLUME"] == DATA
    assert set(words["EXPOSE"].split()) == {"2525", "8025"}
    assert words["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(words["ENTRYPOINT"]) == [
        "penpal-relay", "--config", "/etc/penpal-relay/config.toml",
    ]  # fmt: skip
    assert f"-o {user[0]} -g {user[1]} {DATA}" in words["RUN"]  # the user owns its data
    # Sources never reach the image: the final stage copies only the built environment.
    copies = [args for word, args in final if word in ("COPY", "ADD")]
    assert copies and all(args.startswith("--from=build ") for args in copies), copies


def _image_healthcheck() -> list[str]:
    words = dict(_final_stage(CONTAINER / "Containerfile"))
    command: list[str] = json.loads(words["HEALTHCHECK"].split(" CMD ", 1)[1])
    return command


def test_the_image_health_check_passes_on_a_working_relay_and_fails_on_a_broken_one(
    relay: Relay,
) -> None:
    image = _image_healthcheck()
    assert _compose()["services"]["relay"]["healthcheck"]["test"] == ["CMD", *image]
    assert image[0] == "python"
    with serving(relay) as web:
        command = [sys.executable, *[part.replace("127.0.0.1:8025", web) for part in image[1:]]]
        assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
        shard = relay.data_dir / "store" / "letters" / "01.json"
        shard.write_bytes(b"{damaged")
        failed = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert failed.returncode != 0 and "503" in failed.stderr


def _readme_settings() -> dict[str, Any]:
    """The settings README.md tells a container's config.toml to have: its table of keys,
    then its TOML block for compose."""
    readme = (CONTAINER / "README.md").read_text()
    settings: dict[str, Any] = {}
    for section, key, value in re.findall(r"^\| `\[(\w+)\] (\w+)` \| `(.+?)` \|", readme, re.M):
        settings.setdefault(section, {})[key] = tomllib.loads(f"v = {value}")["v"]
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    for section, values in tomllib.loads(block).items():
        settings.setdefault(section, {}).update(values)
    return settings


def test_the_shipped_config_with_the_readmes_container_settings_is_valid() -> None:
    data = tomllib.loads((ROOT / "config.toml").read_text())
    settings = _readme_settings()
    for section, values in settings.items():
        data.setdefault(section, {}).update(values)
    loaded = config_module.parse(data, Path("/etc/penpal-relay/config.toml"))
    assert loaded.relay.data_dir == Path(DATA)
    assert (loaded.smtp.listen.host, loaded.smtp.listen.port) == (EVERY_INTERFACE, 2525)
    assert (loaded.web.listen_host, loaded.web.listen_port) == (EVERY_INTERFACE, 8025)
    assert settings["delivery"]["smarthost"] == "postfix:10025"


def test_time_zones_work_without_the_systems_zoneinfo() -> None:
    """python:3.11-slim has no /usr/share/zoneinfo: the tzdata package must be enough."""
    check = (
        "import zoneinfo, pathlib; from relay import config; assert zoneinfo.TZPATH == ();"
        f"config.load(pathlib.Path({str(ROOT / 'config.toml')!r}));"
        "print(zoneinfo.ZoneInfo('America/Santiago').key)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONTZPATH": ""},
        cwd=ROOT,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "America/Santiago"), done.stderr


# --- Postfix in front, and compose ----------------------------------------------------------


def test_the_postfix_image_configuration_hands_mail_to_the_relay_container() -> None:
    with postfix_instance() as front:  # Debian's own main.cf and master.cf, as in the image
        env = {**os.environ, "POSTFIX_CONFIG": str(front.config_dir), "DOMAIN": "pals.test.example"}
        subprocess.run(
            ["sh", str(CONTAINER / "postfix-configure.sh"), str(ROOT / "deploy" / "postfix")],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert front.postconf("-h", "relay_domains").strip() == "pals.test.example"
        assert front.postconf("-h", "myhostname").strip() == "mx.pals.test.example"
        check = front.postconf("-h", "penpal_recipient_check")
        assert check.strip() == "check_policy_service inet:relay:10040"
        transport = front.postconf("-h", "transport_maps").strip()
        lookup = subprocess.run(
            ["postmap", "-q", "pals.test.example", transport],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert lookup.stdout.strip() == "penpal:[relay]:2525"
        subnet = _compose()["networks"]["mail"]["ipam"]["config"][0]["subnet"]
        assert front.postconf("-P", "10025/inet/mynetworks").strip() == (
            f"10025/inet/mynetworks = {subnet}"
        )
        assert "127.0.0.1:10025" not in front.postconf("-M")
        for service in ("smtp/inet", "penpal/unix", "10025/inet"):
            assert front.postconf("-F", f"{service}/chroot").strip() == f"{service}/chroot = n"


def test_compose_runs_the_relay_behind_postfix_with_the_dashboard_on_loopback() -> None:
    compose = _compose()
    relay, postfix = compose["services"]["relay"], compose["services"]["postfix"]
    for service in (relay, postfix):
        assert (CONTAINER / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert relay["ports"] == ["127.0.0.1:8025:8025"]  # SMTP reaches it from Postfix only
    assert "./config:/etc/penpal-relay:ro" in relay["volumes"]
    assert any(volume.endswith(f":{DATA}") for volume in relay["volumes"])
    assert relay["read_only"] is True and relay["cap_drop"] == ["ALL"]
    assert postfix["ports"] == ["25:25"]
    subnet = ipaddress.ip_network(compose["networks"]["mail"]["ipam"]["config"][0]["subnet"])
    assert postfix["build"]["args"]["RELAY_NETWORK"] == str(subnet)
    for service in (relay, postfix):
        assert ipaddress.ip_address(service["networks"]["mail"]["ipv4_address"]) in subnet
    readme = (CONTAINER / "README.md").read_text()
    front = postfix["networks"]["mail"]["ipv4_address"]
    assert f'front_servers = ["{front}"]' in readme
    assert 'smarthost = "postfix:10025"' in readme
    assert 'policy_listen = "0.0.0.0:10040"' in readme
