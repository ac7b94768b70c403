#!/usr/bin/env bash
# Every test of Hamgam: the README's test command, and what CI (.ci/run) runs.
#
# Installs what the tests need beyond crates when it is absent: Debian's `chromium` and
# `chromium-driver`, for the staff screen's browser tests (tests/tests/web_browser.rs), and
# Python's grpcio, grpcio-tools and grpcio-reflection from PyPI, for the local capture API's
# client generated from the .proto files (tests/tests/local_api.rs). Then
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

if ! python3 -c 'import grpc, grpc_tools, grpc_reflection' 2>/dev/null; then
  echo "== installing grpcio, grpcio-tools and grpcio-reflection from PyPI (the local API's client test)"
  python3 -m pip install --quiet --disable-pip-version-check \
    grpcio==1.85.3 grpcio-tools==1.85.1 grpcio-reflection==1.85.1
fi

exec cargo test --workspace "$@"
