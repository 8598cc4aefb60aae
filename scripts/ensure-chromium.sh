#!/usr/bin/env bash
# Makes sure Debian's Chromium and its WebDriver are installed for the dashboard's browser test
# (job-web/tests/browser.rs): /usr/bin/chromium and /usr/bin/chromedriver.
#
# Both come from Debian's packages `chromium` and `chromium-driver`; nothing downloads a browser
# build of its own, so this works on machines that reach only the package registries.
# Installing needs root; without it the script says what to run and fails.
set -euo pipefail

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
  say "already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"), $("$CHROMEDRIVER" --version 2>/dev/null | head -n 1 || echo "$CHROMEDRIVER")"
  exit 0
fi

missing=()
[ -x "$CHROMIUM" ] || missing+=("$CHROMIUM")
[ -x "$CHROMEDRIVER" ] || missing+=("$CHROMEDRIVER")
say "missing: ${missing[*]}"

if [ "$(id -u)" != 0 ]; then
  say "not root, so they cannot be installed here: run as root \`apt-get update && apt-get install -y chromium chromium-driver\`"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "apt-get is not available: install Debian's packages chromium and chromium-driver by other means"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "running apt-get update"
if ! apt-get update -qq >/dev/null; then
  say "apt-get update failed (is the Debian mirror reachable?)"
  exit 1
fi
say "installing chromium and chromium-driver with apt-get"
if ! apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; then
  say "apt-get install chromium chromium-driver failed"
  exit 1
fi

for bin in "$CHROMIUM" "$CHROMEDRIVER"; do
  if [ ! -x "$bin" ]; then
    say "installed the packages but $bin is still missing"
    exit 1
  fi
done
say "installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"), $("$CHROMEDRIVER" --version 2>/dev/null | head -n 1)"
