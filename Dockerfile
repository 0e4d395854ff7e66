# cancel-mail-bot's image: `docker build -t cancel-mail-bot .` (README, Deploying).
# BASE is any Debian-like image with Python >= 3.11: the official slim image by default, or a local one
# where no registry answers (`--build-arg BASE=localhost/debian-py:bookworm`, see `make image-test`).
ARG BASE=python:3.12-slim

# -- build: the dependencies from the lock file, checked against its hashes, then the bot itself ----------
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/cancel-mail-bot
COPY requirements.lock requirements-build.lock /src/
# The build backend (setuptools) comes from a lock of its own, checked against its hashes too, and leaves
# the virtual environment once the bot is built.
RUN /opt/cancel-mail-bot/bin/pip install --require-hashes --no-deps -r /src/requirements.lock \
    -r /src/requirements-build.lock
COPY pyproject.toml README.md /src/
COPY bot /src/bot
RUN /opt/cancel-mail-bot/bin/pip install --no-deps --no-build-isolation /src \
    && /opt/cancel-mail-bot/bin/pip uninstall --yes setuptools

# -- run: the virtual environment alone, as a user without privileges ----------------------------------
FROM ${BASE}
COPY --from=build /opt/cancel-mail-bot /opt/cancel-mail-bot
# A fixed uid, so volumes and Kubernetes' runAsNonRoot can check it; /data holds the SQLite store.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin bot \
    && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
ENV PATH=/opt/cancel-mail-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CANCEL_MAIL_STATE_DIR=/data \
    PORT=3000
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000
# /healthz answers 503 from SIGTERM on (for CANCEL_MAIL_DRAIN_GRACE, 5 s, every request is still served, so a
# load balancer takes the container out first), through the drain, and in Socket Mode while the WebSocket
# stays down.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-m", "bot", "healthcheck"]
# The exec form makes the bot PID 1, so SIGTERM reaches it, and the grace then the drain run (up to
# CANCEL_MAIL_DRAIN_GRACE + MAILPARTNER_DEADLINE + 15 s: give `docker stop -t` / stop_grace_period that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot"]
