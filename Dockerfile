# syntax=docker/dockerfile:1
#
# The LLM routing sidecar as a container image.
#
#   docker build -t llm-sidecar .
#
# Configuration: the image reads /etc/sidecar/sidecar.yaml ($SIDECAR_CONFIG), whose
# `routing.policies: policies` resolves to /etc/sidecar/policies. The repository's example
# sidecar.yaml and policies/ are copied there, so the image runs out of the box with the
# offline demo providers. Mount your own over them:
#
#   docker run --rm -v "$PWD/my-config:/etc/sidecar:ro" -p 8787:8787 llm-sidecar serve --host 0.0.0.0
#
# Bind address: the default CMD is `serve`, which binds server.host from the config
# (127.0.0.1). That is right for a Kubernetes pod, where the app reaches the sidecar over
# the pod's shared loopback and nothing else can. With plain `docker run -p`, the published
# port only reaches a server bound to 0.0.0.0, so pass `serve --host 0.0.0.0` (as above)
# and publish it to the host's loopback only if others must not reach it:
# `-p 127.0.0.1:8787:8787`.
#
# API keys are never baked in: providers name an environment variable (api_key_env) or a
# file (api_key_file); pass them with `docker run -e OPENAI_API_KEY ...` or a mounted file.
#
# Needs BuildKit (the default builder since Docker 23) for the cache and bind mounts.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: wheels for the sidecar and every dependency ---------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# gcc builds the sidecar's C extensions (the hot loops of its classifiers and span
# encoder); it stays in this stage, and the runtime image gets only the built wheel.
# (DL3008: the compiler's exact version never reaches the runtime image.)
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The pip cache is a BuildKit cache mount: it speeds up rebuilds and never lands in a layer.
# The default configuration is staged here so that it is copied in one step, readable by
# the non-root user, and so that a checkout without policy files (git keeps no empty
# folders) still yields an /etc/sidecar/policies directory.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels . \
 && mkdir -p /config/policies \
 && cp sidecar.yaml /config/sidecar.yaml \
 && if [ -d policies ]; then cp -R policies/. /config/policies/; fi \
 && chmod -R u=rwX,go=rX /config

# ---- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SIDECAR_CONFIG=/etc/sidecar/sidecar.yaml

# The wheels are bind-mounted from the build stage, so they are not kept in any layer;
# --no-index installs exactly what was built there. No compiler is ever installed.
# (DL3013: the versions are pinned by the wheels built above, not by a version spec.)
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels llm-sidecar \
 && groupadd --system --gid 10001 sidecar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sidecar

# Default configuration (root-owned, read-only to the sidecar user).
COPY --from=build /config /etc/sidecar

# Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001

EXPOSE 8787

# The slim image has no curl: probe with the standard library. The proxy handler is emptied
# so that an HTTP(S)_PROXY in the environment cannot divert the probe. Any failure (refused,
# timeout, non-2xx) raises, and python exits non-zero. This checks the default port 8787;
# if you serve on another one, override it with `docker run --health-cmd ...`.
# (Kubernetes ignores HEALTHCHECK; deploy/kubernetes/sidecar.yaml defines its own probes.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8787/-/health', timeout=3)"]

# SIGTERM starts a graceful shutdown: in-flight streams may finish for up to
# server.shutdown_grace_seconds (default 30). Give `docker stop` more than that: -t 45.
STOPSIGNAL SIGTERM

ENTRYPOINT ["sidecar"]
CMD ["serve"]
