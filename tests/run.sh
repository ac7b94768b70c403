#!/usr/bin/env bash
# Every test of Hamgam: the README's test command, and what CI (.ci/run) runs.
#
# Installs what the tests need beyond crates when it is absent: Debian's `chromium` and
# `chromium-driver`, for the staff screen's and the HQ console's browser tests
# (tests/tests/web_browser.rs, hq_console.rs), `libnss3-tools` and `openssl` (the console test
# puts an HQ certificate in the browser's NSS database), Chromium's managed policy that lets it
# present that certificate to https://127.0.0.1 without asking, and
# Python's grpcio, grpcio-tools and grpcio-reflection from PyPI, for the local capture API's
# client generated from the .proto files (tests/tests/local_api.rs). Then
# `cargo test --workspace`, with any arguments passed on (`./tests/run.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x "${HAMGAM_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
[ -x "${HAMGAM_CHROMEDRIVER:-/usr/bin/chromedriver}" ] || need+=(chromium-driver)
command -v pk12util >/dev/null || need+=(libnss3-tools)
command -v openssl >/dev/null || need+=(openssl)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} from Debian's packages (the browser tests)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Only for https://127.0.0.1 (the tests' servers): a real HQ browser chooses its certificate.
policy=/etc/chromium/policies/managed/hamgam-tests.json
if [ ! -f "$policy" ]; then
  echo "== Chromium policy $policy: present the test HQ certificate to https://127.0.0.1"
  $sudo mkdir -p "$(dirname "$policy")"
  echo '{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://127.0.0.1\",\"filter\":{}}"]}' \
    | $sudo tee "$policy" >/dev/null
fi

if ! python3 -c 'import grpc, grpc_tools, grpc_reflection' 2>/dev/null; then
  echo "== installing grpcio, grpcio-tools and grpcio-reflection from PyPI (the local API's client test)"
  python3 -m pip install --quiet --disable-pip-version-check \
    grpcio==1.85.3 grpcio-tools==1.85.1 grpcio-reflection==1.85.1
fi

exec cargo test --workspace "$@"
