# 反诈联络员群助手 (relaybot) in a container.
#
#   docker build -t relaybot .                      # without OCR (screenshots are stored unchecked)
#   docker build -t relaybot --build-arg OCR=1 .    # with the offline OCR extra (about 420 MB more)
#   docker run -d --name relaybot --restart unless-stopped \
#     -v relaybot-data:/data --env-file /etc/relaybot/env relaybot
#
# Everything the bot keeps (SQLite database, screenshot evidence, Wechaty cache, optional relaybot.toml)
# lives in the /data volume. The token goes in through the environment (--env-file), never into the image.
# Versions of every Python package come from constraints.txt (deploy/update-constraints.sh makes it).

FROM python:3.11-slim-bookworm

# 1 installs the `ocr` extra (rapidocr-onnxruntime, opencv) and the system libraries opencv needs.
ARG OCR=0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Debian's security updates replace package versions, so pinning them would break rebuilds.
# hadolint ignore=DL3008
RUN set -eux; \
    if [ "$OCR" = "1" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends libgl1 libglib2.0-0; \
        rm -rf /var/lib/apt/lists/*; \
    fi

# A dedicated user without a login shell; its home is the data volume (matplotlib keeps its cache there).
RUN groupadd --system --gid 10001 relaybot \
    && useradd --system --uid 10001 --gid relaybot --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin relaybot

# Installed like any package: content/ and the migrations are package data of the wheel, so the sources are
# only needed to build it and are removed afterwards (nothing reads them at run time).
WORKDIR /usr/src/relaybot
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY content ./content
COPY scheduler.py ./
RUN set -eux; \
    extras=""; \
    if [ "$OCR" = "1" ]; then extras="[ocr]"; fi; \
    pip install -c constraints.txt ".${extras}"; \
    cd /; \
    rm -rf /usr/src/relaybot; \
    pip check; \
    relaybot --help >/dev/null; \
    python -c "from bot.content import load_library, load_texts; load_texts(); load_library()"; \
    python -c "from zoneinfo import ZoneInfo; ZoneInfo('Asia/Shanghai')"; \
    if [ "$OCR" = "1" ]; then python -c "import cv2, rapidocr_onnxruntime"; fi
WORKDIR /

RUN mkdir -p /data && chown relaybot:relaybot /data && chmod 0750 /data
ENV RELAYBOT_DATABASE_URL=sqlite:////data/relaybot.db \
    RELAYBOT_EVIDENCE_DIR=/data/evidence \
    RELAYBOT_CACHE_DIR=/data/wechaty-cache \
    RELAYBOT_CONFIG=/data/relaybot.toml \
    RELAYBOT_LOG_FORMAT=json \
    HOME=/data
VOLUME ["/data"]

# Numeric, so that a runtime can tell it is not root without the image's /etc/passwd.
USER 10001:10001
# python-wechaty writes ./.wechaty into the working directory: keep that in the volume too.
WORKDIR /data

# `relaybot doctor` exits non-zero when the configuration, database, gateway or token is wrong.
HEALTHCHECK --interval=5m --timeout=60s --start-period=2m --retries=3 CMD ["relaybot", "doctor"]

# Upgrade the database schema first (the bot would also do it at start), then replace the shell with the bot
# so that `docker stop` (SIGTERM) reaches it directly.
CMD ["sh", "-c", "relaybot db upgrade && exec relaybot run"]
