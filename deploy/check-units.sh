#!/usr/bin/env bash
# Checks the systemd units in deploy/systemd: `systemd-analyze verify` (syntax and directives)
# and `systemd-analyze security --offline=true` (the exposure score, 0.0 best to 10.0 worst).
# Prints each unit's exposure and exits non-zero if one is above HAMGAM_MAX_EXPOSURE (3.0) or
# fails to verify. Where systemd-analyze is missing it says so and exits 0.
#
#   ./deploy/check-units.sh
#   HAMGAM_MAX_EXPOSURE=2 ./deploy/check-units.sh
set -euo pipefail

cd "$(dirname "$0")/systemd"
max="${HAMGAM_MAX_EXPOSURE:-3.0}"
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not found: the units were not checked (Debian/Ubuntu: apt-get install systemd)"
  exit 0
fi
echo "$(systemd-analyze --version | head -n 1); exposure limit $max"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
for unit in *.service; do
  # verify also checks that ExecStart's program exists: on a machine without the installed
  # binaries it checks a copy whose ExecStart is /bin/true, and says so.
  exe="$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" | head -n 1)"
  if [ -x "$exe" ]; then
    target="$unit"
    note=""
  else
    sed 's#^ExecStart=[^ ]*#ExecStart=/bin/true#' "$unit" > "$tmp/$unit"
    target="$tmp/$unit"
    note=" ($exe not installed here: verified with ExecStart=/bin/true)"
  fi
  verified="verify ok"
  if ! verify="$(systemd-analyze verify "$target" 2>&1)" || [ -n "$verify" ]; then
    echo "$unit: systemd-analyze verify failed:" >&2
    echo "$verify" >&2
    verified="verify FAILED"
    failed=1
  fi
  exposure="$(systemd-analyze security --offline=true "$unit" 2>/dev/null |
    sed -n 's/^→ Overall exposure level for .*: \([0-9.]*\).*/\1/p')"
  if [ -z "$exposure" ]; then
    echo "$unit: systemd-analyze security gave no exposure level" >&2
    failed=1
    continue
  fi
  if awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e > m) }'; then
    echo "$unit: exposure $exposure, above $max: FAIL; $verified$note"
    echo "  systemd-analyze security --offline=true deploy/systemd/$unit  lists what raises it" >&2
    failed=1
  else
    echo "$unit: exposure $exposure (limit $max), $verified$note"
  fi
done
exit "$failed"
