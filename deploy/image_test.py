"""`make image-test`: build the bot's image with podman from a local Debian base, and run it, no Docker engine.

Where no engine runs containers (rootless hosts, CI sandboxes), podman still builds (`--isolation chroot`),
and a container's filesystem can be mounted and its entrypoint run under `chroot` as the image's user, on
the host's network. This script does that and checks what the Dockerfile promises:

1. the image builds from the lock file on a base given as BASE (Debian 12's Python 3.11 here);
2. its user is not root, it has a health check and a /data volume;
3. the console answers;
4. HTTP mode serves /healthz as that user, and `python -m bot healthcheck` (the HEALTHCHECK) agrees;
5. SIGTERM mid-cancel drains: the outcome is posted, and the process exits 0.

Needs root. Installs podman and debootstrap with apt-get where missing; the base image is made once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.console.local_slack import LocalSlack  # noqa: E402
from tests.fakes import API_KEY, BOT_TOKEN, SIGNING_SECRET, FakeMailPartner, Fault, free_port  # noqa: E402

BASE = "localhost/debian-py:bookworm"
IMAGE = "localhost/cancel-mail-bot:image-test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd"


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def run(*command: str, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **options)  # type: ignore[call-overload]


def ensure_tools() -> None:
    if os.geteuid() != 0:
        raise SystemExit("image-test needs root (podman's chroot isolation, debootstrap, chroot)")
    missing = [tool for tool in ("podman", "debootstrap") if shutil.which(tool) is None]
    if missing:
        step(f"installing {' '.join(missing)} with apt-get")
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", *missing, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def ensure_base() -> None:
    if subprocess.run(["podman", "image", "exists", BASE]).returncode == 0:
        step(f"base image {BASE} is there already")
        return
    step(f"making the base image {BASE} with debootstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="cancel-mail-base-") as root:
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            "bookworm",
            root,
            stdout=subprocess.DEVNULL,
        )
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        run("podman", "import", "-", BASE, stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()


def build() -> float:
    step(f"building {IMAGE} from the Dockerfile, BASE={BASE}")
    started = time.monotonic()
    # The host's certificate authorities, for the RUN steps only (not kept in the image): where the package
    # index is reached through a TLS-inspecting proxy, the base image's own bundle does not know its CA.
    authorities = [f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro"] if Path(CA_BUNDLE).is_file() else []
    run(
        "podman", "build", "--isolation", "chroot", "--format", "docker", *authorities,
        "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT),
    )  # fmt: skip
    return time.monotonic() - started


def inspect() -> dict[str, object]:
    (image,) = json.loads(run("podman", "image", "inspect", IMAGE, capture_output=True).stdout)
    config = image["Config"]
    user = str(config.get("User", ""))
    assert user and not user.startswith(("0", "root")), f"the image runs as {user!r}"
    health = image.get("Healthcheck") or config.get("Healthcheck") or {}  # podman keeps it beside Config
    assert health.get("Test"), "no HEALTHCHECK in the image"
    assert "/data" in (config.get("Volumes") or {}), "no /data volume"
    assert config.get("Entrypoint") == ["python", "-m", "bot"], config.get("Entrypoint")
    print(f"    user {user}, entrypoint {config['Entrypoint']}, health check {health['Test']}")
    print(f"    size {image['Size'] / 1e6:.0f} MB")
    return config


@contextlib.contextmanager
def mounted() -> Iterator[Path]:
    """A container's writable root filesystem, as the image has it."""
    container = run("podman", "create", IMAGE, capture_output=True).stdout.strip()
    try:
        yield Path(run("podman", "mount", container, capture_output=True).stdout.strip())
    finally:
        subprocess.run(["podman", "umount", container], capture_output=True)
        subprocess.run(["podman", "rm", "-f", container], capture_output=True)


def in_image(root: Path, config: dict[str, object], *args: str, **env: str) -> list[str]:
    """The command line that runs `args` in the image, as its user, with its environment plus `env`."""
    image_env = dict(item.split("=", 1) for item in config.get("Env") or [])  # type: ignore[union-attr]
    variables = [f"{k}={v}" for k, v in {**image_env, "HOME": "/data", **env}.items()]
    user = str(config["User"])
    return ["chroot", f"--userspec={user}", str(root), "sh", "-c", 'cd /data && exec "$@"', "sh",
            "env", "-i", *variables, *args]  # fmt: skip


def check_console(root: Path, config: dict[str, object]) -> None:
    step("the console answers")
    result = subprocess.run(
        in_image(root, config, "python", "-m", "bot", "console"),
        input="/cancel-mail 300\nconfirm\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "✅ Mail `300` is cancelled" in result.stdout, result.stdout
    print("    " + next(line for line in result.stdout.splitlines() if "is cancelled" in line).strip())


def check_http_mode(root: Path, config: dict[str, object]) -> None:
    from tests.test_e2e import Driver

    step("HTTP mode as the image's user: /healthz, the health check, and a drain on SIGTERM")
    port = free_port()
    with LocalSlack() as slack:
        mailpartner = FakeMailPartner().start()
        mailpartner.fault("300", Fault(delay=2.0))  # the cancel is under way when SIGTERM comes
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "MAILPARTNER_API_KEY": API_KEY,
            "MAILPARTNER_BASE_URL": mailpartner.base_url,
            "PORT": str(port),
        }
        log = tempfile.NamedTemporaryFile(prefix="cancel-mail-image-", suffix=".log", delete=False)  # noqa: SIM115
        bot = subprocess.Popen(
            in_image(root, config, "python", "-m", "bot", **env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            started, healthy = time.monotonic(), False
            while time.monotonic() - started < 30 and not healthy:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response,
                ):
                    healthy = response.status == 200
                time.sleep(0.1)
            assert healthy, Path(log.name).read_text()
            print(f"    GET /healthz: 200 after {time.monotonic() - started:.1f} s")
            uids = _uids_of_tree(bot.pid)
            assert uids and all(uid == int(str(config["User"]).split(":")[0]) for uid in uids), uids
            print(f"    every process of the bot runs as uid {sorted(set(uids))}")
            check = subprocess.run(
                in_image(root, config, "python", "-m", "bot", "healthcheck", PORT=str(port)),
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            print(f"    python -m bot healthcheck: exit 0, {check.stdout.strip()!r}")

            Driver(_At(port), slack).drain_mid_cancel(bot, mailpartner, "300")  # as tests/test_e2e.py does
            text = Path(log.name).read_text()
            assert "every in-flight cancel finished" in text, text
            print("    SIGTERM mid-cancel: outcome posted, exit 0, log: every in-flight cancel finished")
        finally:
            if bot.poll() is None:
                bot.kill()
            mailpartner.stop()
            os.unlink(log.name)


class _At:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"


def _uids_of_tree(pid: int) -> list[int]:
    """The real uids of `pid` and its descendants."""
    uids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            if _descends(int(status.parent.name), pid):
                uids.append(int(fields["Uid"].split()[0]))
    return uids


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def main() -> int:
    ensure_tools()
    ensure_base()
    seconds = build()
    print(f"    built in {seconds:.0f} s")
    config = inspect()
    with mounted() as root:
        check_console(root, config)
        check_http_mode(root, config)
    step("image-test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
