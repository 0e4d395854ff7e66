"""The outside contract stays in step: settings the code reads ↔ .env.example ↔ README; manifest ↔ code."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from bot.cancels.workflow import CALLBACK_ID, StepResult, step_outputs
from bot.http import PROXY_VARIABLES
from bot.inbound.forms import GLOBAL_SHORTCUT, MESSAGE_SHORTCUT
from bot.inbound.listeners import COMMAND
from bot.settings import SECRET_SETTINGS, Settings
from tests.fakes import ROOT

# Slack's published manifest schema (github.com/slackapi/manifest-schema, `schemas/`): a copy beside this
# checkout, or wherever SLACK_MANIFEST_SCHEMA points (that folder, or its manifest.schema.json).
SCHEMA_VARIABLE = "SLACK_MANIFEST_SCHEMA"
SCHEMA_SKIP = (
    "Slack's published manifest schema (github.com/slackapi/manifest-schema, schemas/manifest.schema*.json) "
    f"is not beside this checkout: download it and set {SCHEMA_VARIABLE} to its folder"
)


def schema_folder(env: dict[str, str] | None = None) -> Path:
    named = (os.environ if env is None else env).get(SCHEMA_VARIABLE, "").strip()
    if not named:
        return ROOT.parent / "shared" / "slack-manifest-schema"
    path = Path(named).expanduser()
    return path.parent if path.is_file() else path


SCHEMAS = schema_folder()
SCHEMA = SCHEMAS / "manifest.schema.json"


class RecordingEnv(dict[str, str]):
    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def settings_read() -> set[str]:
    env = RecordingEnv()
    Settings.from_env(env, console=True)
    return env.read


# Read, but not the bot's own: systemd's StateDirectory=, the XDG state home and HOME, for the state directory;
# the proxy variables every HTTP program reads (checked with the settings: README, Behind a proxy).
PLATFORM_VARIABLES = {
    "STATE_DIRECTORY",
    "XDG_STATE_HOME",
    "HOME",
    *PROXY_VARIABLES,
    *(v.lower() for v in PROXY_VARIABLES),
}


def test_every_setting_is_in_env_example_and_readme() -> None:
    read = settings_read()
    files = {name for name in read if name.endswith("_FILE")}
    # Every secret, and only secrets, may come from a file; the README states the convention once.
    assert files == {f"{name}_FILE" for name in SECRET_SETTINGS}
    names = read - files - PLATFORM_VARIABLES
    assert len(names) >= 19
    example = set(dotenv_values(ROOT / ".env.example")) | commented_settings()
    readme = (ROOT / "README.md").read_text()
    assert names == example, names ^ example
    for name in names:
        assert f"`{name}`" in readme, name
    assert "`<NAME>_FILE`" in readme and "`STATE_DIRECTORY`" in readme


def commented_settings() -> set[str]:
    """The settings .env.example shows commented out, at their default (`# NAME=default`); the one account
    example stands for MAILPARTNER_ACCOUNT_<NAME>_API_KEY."""
    text = (ROOT / ".env.example").read_text()
    names = re.findall(r"(?m)^# ([A-Z][A-Z0-9_]*)=\S*$", text)  # a value, not prose that names one
    return {n for n in names if not n.startswith("MAILPARTNER_ACCOUNT_")}


def test_env_example_loaded_over_the_image_changes_nothing_it_decides() -> None:
    """compose's env_file and `docker run --env-file` set every uncommented line, empty or not, over the
    image's environment: the store stays at /data/cancel-mail.db, where the README's backups look."""
    image = {"CANCEL_MAIL_STATE_DIR": "/data", "PORT": "3000", "HOME": "/data"}
    loaded = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    assert set(loaded) == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "MAILPARTNER_API_KEY"}
    settings = Settings.from_env({**image, **loaded, "MAILPARTNER_API_KEY": "k"}, console=True)
    assert settings.database_url == "sqlite:////data/cancel-mail.db" and settings.port == 3000
    for name in commented_settings():  # each default shown is the default
        shown = re.search(rf"(?m)^# {name}=(\S*)$", (ROOT / ".env.example").read_text()).group(1)  # type: ignore[union-attr]
        if shown:
            assert Settings.from_env({**image, name: shown, "MAILPARTNER_API_KEY": "k"}, console=True) == settings, name


def test_env_example_is_a_valid_console_configuration() -> None:
    values = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    settings = Settings.from_env(values, console=True)
    assert settings.prompt_ttl == 900 and settings.language == "en"


def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_matches_the_code() -> None:
    data = manifest()
    (command,) = data["features"]["slash_commands"]
    assert COMMAND.match(command["command"]) and command["usage_hint"]
    assert set(data["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "app_mentions:read",
        "usergroups:read",
        "users:read",  # each person's language
        "im:history",  # direct messages
    }
    assert data["settings"]["event_subscriptions"]["bot_events"] == [
        "app_mention",
        "function_executed",
        "app_home_opened",
        "message.im",
    ]
    home = data["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is False  # or nobody could write to the bot
    assert data["settings"]["interactivity"]["is_enabled"] is True
    assert data["settings"]["org_deploy_enabled"] is True and data["settings"]["function_runtime"] == "remote"
    shortcuts = {s["callback_id"]: s for s in data["features"]["shortcuts"]}
    assert shortcuts[GLOBAL_SHORTCUT]["type"] == "global" and shortcuts[MESSAGE_SHORTCUT]["type"] == "message"
    step = data["functions"][CALLBACK_ID]
    assert set(step["input_parameters"]["properties"]) == {"mail_ids", "reason", "requester", "channel"}
    assert set(step["input_parameters"]["required"]) == {"mail_ids", "requester", "channel"}
    outputs = step_outputs(StepResult.KEPT, ["300"], "kept")
    assert set(step["output_parameters"]["properties"]) == set(outputs)
    kinds = {"string": str, "boolean": bool}
    for name, value in outputs.items():
        assert isinstance(value, kinds[step["output_parameters"]["properties"][name]["type"]]), name
    urls = [
        command["url"],
        data["settings"]["event_subscriptions"]["request_url"],
        data["settings"]["interactivity"]["request_url"],
    ]
    assert all(url.endswith("/slack/events") for url in urls)


@pytest.mark.skipif(not SCHEMA.exists(), reason=SCHEMA_SKIP)
def test_manifest_matches_slacks_schema() -> None:
    import jsonschema
    from referencing import Registry, Resource

    # The top schema picks a version by `_metadata.major_version` and names each by its published URL.
    published = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"
    registry: Registry = Registry().with_resources(
        (published + path.name, Resource.from_contents(json.loads(path.read_text())))
        for path in SCHEMAS.glob("manifest.schema.*.*.json")
    )
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()), registry=registry)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(manifest())]
    assert errors == []
    socket_mode = manifest()
    socket_mode["settings"]["socket_mode_enabled"] = True
    for url_holder in (socket_mode["settings"]["event_subscriptions"], socket_mode["settings"]["interactivity"]):
        del url_holder["request_url"]
    del socket_mode["features"]["slash_commands"][0]["url"]
    assert list(validator.iter_errors(socket_mode)) == []


def test_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert Path(ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_manifest_schema_can_be_pointed_at(tmp_path: Path) -> None:
    """Where `../shared/` is missing, SLACK_MANIFEST_SCHEMA finds a downloaded copy; the skip says so."""
    (tmp_path / "manifest.schema.json").write_text("{}")
    assert schema_folder({SCHEMA_VARIABLE: str(tmp_path)}) == tmp_path
    assert schema_folder({SCHEMA_VARIABLE: str(tmp_path / "manifest.schema.json")}) == tmp_path
    assert schema_folder({}) == ROOT.parent / "shared" / "slack-manifest-schema"
    assert "slackapi/manifest-schema" in SCHEMA_SKIP and SCHEMA_VARIABLE in SCHEMA_SKIP
