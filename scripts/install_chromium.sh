#!/usr/bin/env bash
# Installs Debian's Chromium (the report test opens report.html in it, headless) where it is missing. Needs root for
# apt-get; without it, says what to install and exits 0, and the browser test skips with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing and this is not root: install Debian's chromium package to run the report's browser test" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends chromium >/dev/null
chromium --version
