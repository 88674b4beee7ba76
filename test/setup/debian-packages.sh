#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests run for real, when they are missing: `prometheus`
# (prometheus + promtool, for test/prometheus*.test.ts, dashboards-promql and deploy-offline),
# `prometheus-alertmanager` (prometheus-alertmanager + amtool, for test/alerts.test.ts and deploy-offline)
# and `chromium` (headless, for test/browser/).
# Runs before `npm test` (the root `pretest` script), so the README's test command works alone on a bare
# machine of this kind; .ci/run goes through the same path. Needs root and apt-get; elsewhere it says
# what to install and exits non-zero.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

echo "test setup: installing Debian packages the tests need: ${need[*]}"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test setup: cannot install ${need[*]} (needs root and apt-get). Install them, e.g. 'sudo apt-get install ${need[*]}', then run npm test again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

# Debian's postinst asks invoke-rc.d / systemd to start the daemon. In a container without an init
# system nothing starts; where something did, stop it: each test starts its own on a free port.
for pkg in "${need[@]}"; do
  if [ -d /run/systemd/system ]; then
    systemctl stop "$pkg.service" 2>/dev/null || true
  elif [ -x "/etc/init.d/$pkg" ] && "/etc/init.d/$pkg" status >/dev/null 2>&1; then
    "/etc/init.d/$pkg" stop || true
  fi
done
echo "test setup: installed ${need[*]}"
