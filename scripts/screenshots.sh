#!/usr/bin/env bash
# Regenerates the dashboard screenshots in docs/dashboard/ with the browser test (headless
# Chromium), so the pictures always show the pages as the code draws them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-chromium.sh
JOBSMITH_SCREENSHOTS="$PWD/docs/dashboard" cargo test -p jobsmith-web --test browser -- --nocapture
