#!/usr/bin/env bash
# Hamgam demo: a fresh PKI, a hub, three dealership agents that record and sync, and what HQ sees.
# Everything runs on 127.0.0.1 with embedded sled stores in a temporary folder; nothing is left
# running afterwards.
#
#   ./deploy/demo.sh                 # builds (release) and runs
#   HAMGAM_PROFILE=dev ./deploy/demo.sh   # reuse a debug build (what CI does)
#   HAMGAM_DEMO_KEEP=1 ./deploy/demo.sh   # keep the folder with stores, certificates and logs
set -euo pipefail

cd "$(dirname "$0")/.."
# Errors print as readable chains; a backtrace under every expected failure only hides them.
export RUST_LIB_BACKTRACE=0
profile="${HAMGAM_PROFILE:-release}"
case "$profile" in
  release) target_dir=release ;;
  dev) target_dir=debug ;;
  *) echo "HAMGAM_PROFILE must be release or dev" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*"; }

step "building central and dealer-agent ($profile)"
cargo build --profile "$profile" -p hamgam-central -p hamgam-dealer-agent
bin="target/$target_dir"

work="$(mktemp -d "${TMPDIR:-/tmp}/hamgam-demo.XXXXXX")"
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
    kill -TERM "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
  fi
  if [ -z "${HAMGAM_DEMO_KEEP:-}" ]; then rm -rf "$work"; else echo "demo files kept in $work"; fi
}
trap cleanup EXIT

dealers=(D-1042 D-2077 D-3155)

step "making a PKI in $work/pki (CA, hub, three dealers, HQ)"
"$bin/central" pki init --dir "$work/pki"
"$bin/central" pki issue hub --dir "$work/pki" --dns localhost --ip 127.0.0.1
for d in "${dealers[@]}"; do "$bin/central" pki issue dealer "$d" --dir "$work/pki"; done
"$bin/central" pki issue hq demo --dir "$work/pki"

agent() {
  local d="$1"; shift
  "$bin/dealer-agent" --dealer "$d" --data-dir "$work/agent-$d" --hub "$hub_addr" --server-name localhost \
    --ca "$work/pki/ca.crt" --cert "$work/pki/dealer-$d.crt" --key "$work/pki/dealer-$d.key" "$@"
}

step "the hub is not up yet: dealer D-1042 records a walk-in anyway, and its sync fails"
hub_addr="127.0.0.1:9" # nothing listens here
agent D-1042 record lead --staff S-1 -f customerRef=L-00 -f source=LEAD_SOURCE_PHONE_CALL -f contactedAtMs=now
agent D-1042 sync || echo "(sync failed as expected; the record stays pending)"
agent D-1042 status

step "starting the hub (mutual TLS, sled store in $work/hub)"
"$bin/central" serve --listen 127.0.0.1:0 --data-dir "$work/hub" \
  --ca "$work/pki/ca.crt" --cert "$work/pki/hub.crt" --key "$work/pki/hub.key" \
  --addr-file "$work/hub.addr" 2>"$work/hub.log" &
hub_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/hub.addr" ] && break
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/hub.log" >&2; echo "the hub did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/hub.addr" ] || { echo "the hub did not report its address" >&2; exit 1; }
hub_addr="$(cat "$work/hub.addr")"
echo "hub listening on $hub_addr"

n=0
for d in "${dealers[@]}"; do
  n=$((n + 1))
  step "dealer $d records a day of work"
  for i in 1 2 3; do
    c="C-$n$i"
    agent "$d" record customer --staff "S-$n" -f customerRef="$c" -f partyType=PARTY_TYPE_PERSON \
      -f givenName="مریم" -f familyName="رضایی $n$i" -f nationalId="00${n}${i}000000" -f mobile="0912${n}${i}00000"
    agent "$d" record retail-delivery --staff "S-$n" -f dealRef="DL-$n$i" -f vin="NAAP${n}${i}0000000000${i}" \
      -f modelName=Shahin -f modelYear=2026 -f saleDate=2026-10-01 -f deliveryDate=2026-10-05 \
      -f saleCategory=SALE_CATEGORY_RETAIL -f "parties=[{\"role\":\"PARTY_ROLE_BUYER\",\"customerRef\":\"$c\"}]"
    agent "$d" record repair-order --staff "S-$n" -f roNumber="RO-$n$i" -f vin="NAAP${n}${i}0000000000${i}" \
      -f ownerRef="$c" -f openedAtMs=now -f payType=PAY_TYPE_CUSTOMER -f odometerInKm=1500 -f odometerOutKm=1502
    agent "$d" record lead --staff "S-$n" -f customerRef="L-$n$i" -f source=LEAD_SOURCE_SHOWROOM_VISIT -f contactedAtMs=now
  done
  # One record with a required field left empty: the hub keeps it in quarantine and says why.
  agent "$d" record lead --staff "S-$n" -f customerRef="L-${n}9"
  agent "$d" status
  step "dealer $d syncs"
  agent "$d" sync
done

step "what the hub sent back to D-1042: records that need a fix"
agent D-1042 verdicts --needs-fixing --lang en
agent D-1042 verdicts --needs-fixing --lang fa

hq() {
  "$bin/central" query --hub "$hub_addr" --server-name localhost --ca "$work/pki/ca.crt" \
    --cert "$work/pki/hq-demo.crt" --key "$work/pki/hq-demo.key" "$@"
}
step "what HQ sees: dealers"
hq dealers
step "what HQ sees: records of D-2077"
hq records D-2077 --limit 20

step "stopping the hub (SIGTERM)"
kill -TERM "$hub_pid"
wait "$hub_pid"
hub_pid=""
echo "hub stopped cleanly; demo done"
