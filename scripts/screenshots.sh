#!/usr/bin/env bash
# Screenshots of every console page at 1280×800 (<page>-desktop.png) and 390×844 (<page>-phone.png), full page,
# into DIR (default var/screenshots). Runs tests/console/test_screenshots.py, which seeds realistic data (a
# workspace launched on the moto server, budgets, ledger rows, invitations, tokens), serves the console and drives
# headless Chromium; the test also fails when a page overflows a phone's width or shows raw JSON.
# Uses PostgreSQL when DATABASE_URL is set (and Redis with REDIS_URL), SQLite otherwise, as scripts/test.sh does.
# Needs Chromium (Debian's `chromium` package).
set -euo pipefail
if [ $# -gt 0 ]; then
  mkdir -p "$1"
  DIR="$(cd "$1" && pwd)"
else
  DIR="$(cd "$(dirname "$0")/.." && pwd)/var/screenshots"
  mkdir -p "$DIR"
fi
source "$(dirname "$0")/_venv.sh"
echo "==> screenshots into $DIR (database: ${DATABASE_URL:-sqlite})"
status=0
CARREL_SCREENSHOTS_DIR="$DIR" CARREL_REQUIRE_BROWSER=1 \
  .venv/bin/pytest -q -p no:cacheprovider tests/console/test_screenshots.py "${@:2}" || status=$?
echo "==> $(find "$DIR" -maxdepth 1 -name '*.png' | wc -l) screenshots in $DIR"
exit $status
