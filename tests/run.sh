#!/usr/bin/env bash
# Every test of Hamgam: the README's test command, and what CI (.ci/run) runs.
#
# Installs what the tests need beyond crates when it is absent: Debian's `chromium` and
# `chromium-driver`, for the staff screen's browser tests (tests/tests/web_browser.rs). Then
# `cargo test --workspace`, with any arguments passed on (`./tests/run.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x "${HAMGAM_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
[ -x "${HAMGAM_CHROMEDRIVER:-/usr/bin/chromedriver}" ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} from Debian's packages (the staff screen's browser tests)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

exec cargo test --workspace "$@"
