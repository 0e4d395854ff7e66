"""`python -m bot healthcheck`: exit 0 when this host's bot answers 200 on /healthz."""

from __future__ import annotations

from bot.settings import Settings


def healthcheck_command(settings: Settings) -> int:
    """For a container's HEALTHCHECK: the image has no curl, and the answer's one line says why it failed."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/healthz", timeout=4) as response:
            print(response.read().decode().strip())
            return 0
    except urllib.error.HTTPError as error:
        print(f"{error.code}: {error.read().decode().strip()}")
    except OSError as error:
        print(f"no answer on port {settings.port}: {error}")
    return 1
