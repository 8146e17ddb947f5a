#!/usr/bin/env bash
# Installs Debian's prometheus package, for its promtool (CI checks the alerting rules in deploy/alerts/ with
# `promtool check rules` and runs their unit tests with `promtool test rules`), where promtool is missing.
# Idempotent. Needs root or sudo for apt-get; without either, says what to install and exits 0: the rules' test
# then skips with that reason, unless AME_REQUIRE_PROMTOOL=1 (as in CI), where it fails.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "promtool is missing and neither root nor sudo is available: install Debian's prometheus package" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is missing and there is no apt-get here: install Prometheus's promtool with this system's package manager" >&2
  exit 0
fi
"${as_root[@]}" apt-get update -q >/dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
# The package's service would start a Prometheus server; CI needs only the binary.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${as_root[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
promtool --version
