#!/usr/bin/env bash
# Hamgam demo: a fresh PKI, a hub and three dealership agents as real processes on 127.0.0.1 with
# embedded sled stores; each branch simulates a few days of work (realistic Persian data with
# injected faults), the agents sync over mutual TLS, and HQ's view is printed. Nothing is left
# running afterwards.
#
#   ./deploy/demo.sh                        # builds (release) and runs
#   HAMGAM_PROFILE=dev ./deploy/demo.sh     # reuse a debug build (what CI does)
#   HAMGAM_DEMO_KEEP=1 ./deploy/demo.sh     # keep the folder with stores, certificates and logs
#   HAMGAM_DEMO_SEED=7 ./deploy/demo.sh     # another simulated network
#
# The binaries are looked for where cargo put them (`cargo metadata`), so CARGO_TARGET_DIR and
# a `build.target-dir` in .cargo/config.toml work too.
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
seed="${HAMGAM_DEMO_SEED:-42}"

started=$SECONDS
step() { printf '\n== [%3ss] %s\n' "$((SECONDS - started))" "$*"; }

step "building central and dealer-agent ($profile)"
cargo build --profile "$profile" -p hamgam-central -p hamgam-dealer-agent
metadata="$(cargo metadata --format-version 1 --no-deps)"
if command -v python3 >/dev/null; then
  target_root="$(printf '%s' "$metadata" | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
else
  target_root="$(printf '%s' "$metadata" | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
fi
bin="$target_root/$target_dir"
[ -x "$bin/central" ] && [ -x "$bin/dealer-agent" ] || {
  echo "cargo built into $target_root, but $bin/central or $bin/dealer-agent is missing" >&2; exit 1;
}
started=$SECONDS

work="$(mktemp -d "${TMPDIR:-/tmp}/hamgam-demo.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -z "${HAMGAM_DEMO_KEEP:-}" ]; then rm -rf "$work"; else echo "demo files kept in $work"; fi
}
trap cleanup EXIT

dealers=(D-1042 D-2077 D-3155)
network="$(IFS=,; echo "${dealers[*]}")"

step "making a PKI in $work/pki (CA, hub, three dealers, HQ)"
"$bin/central" pki init --dir "$work/pki"
"$bin/central" pki issue hub --dir "$work/pki" --dns localhost --ip 127.0.0.1
for d in "${dealers[@]}"; do "$bin/central" pki issue dealer "$d" --dir "$work/pki"; done
"$bin/central" pki issue hq demo --role reviewer --dir "$work/pki"

hub_addr="127.0.0.1:9" # nothing listens here until the hub starts
agent_args() {
  local d="$1"
  echo --dealer "$d" --data-dir "$work/agent-$d" --hub "$hub_addr" --server-name localhost \
    --ca "$work/pki/ca.crt" --cert "$work/pki/dealer-$d.crt" --key "$work/pki/dealer-$d.key" \
    --local-api 127.0.0.1:0  # three agents on one machine: each its own free port
}
agent() {
  local d="$1"; shift
  # shellcheck disable=SC2046 # the paths are ours and have no spaces
  "$bin/dealer-agent" $(agent_args "$d") "$@"
}

for d in "${dealers[@]}"; do
  step "branch $d records three days of work (simulated, seed $seed, 2% of each fault)"
  agent "$d" simulate --seed "$seed" --network "$network" --days 3 --faults all=0.02 \
    --labels "$work/labels-$d.jsonl" --registry "$work/registry.json"
done

step "the hub is not up yet: D-1042 tries to sync, fails, and keeps everything"
agent D-1042 sync || echo "(sync failed as expected; the records stay pending)"
agent D-1042 status

step "starting the hub (mutual TLS, sled store in $work/hub)"
"$bin/central" serve --listen 127.0.0.1:0 --data-dir "$work/hub" \
  --ca "$work/pki/ca.crt" --cert "$work/pki/hub.crt" --key "$work/pki/hub.key" \
  --registry "$work/registry.json" --addr-file "$work/hub.addr" 2>"$work/hub.log" &
pids+=($!)
hub_pid=$!
for _ in $(seq 1 100); do
  [ -s "$work/hub.addr" ] && break
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/hub.log" >&2; echo "the hub did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/hub.addr" ] || { echo "the hub did not report its address" >&2; exit 1; }
hub_addr="$(cat "$work/hub.addr")"
echo "hub listening on $hub_addr"

step "starting three agents (dealer-agent run): they connect and sync"
for d in "${dealers[@]}"; do
  # Started directly (not through a shell function) so $! is the agent itself.
  # shellcheck disable=SC2046
  "$bin/dealer-agent" $(agent_args "$d") run 2>"$work/agent-$d.log" &
  pids+=($!)
done

step "a walk-in at D-2077 while its agent runs: recorded through the running agent, synced at once"
for _ in $(seq 1 100); do [ -S "$work/agent-D-2077/agent.sock" ] && break; sleep 0.1; done
agent D-2077 record lead --staff D-2077-S1 -f customerRef=WALKIN-1 -f source=LEAD_SOURCE_SHOWROOM_VISIT \
  -f modelInterest=Tara -f contactedAtMs=now

step "waiting until every agent's outbox is empty"
for d in "${dealers[@]}"; do
  for i in $(seq 1 600); do
    pending="$(agent "$d" status --json | sed -n 's/.*"pending":\([0-9]*\).*/\1/p')"
    [ "$pending" = "0" ] && break
    [ $((i % 20)) -eq 0 ] && echo "$d: $pending records still pending"
    sleep 0.1
  done
  [ "$pending" = "0" ] || { echo "$d did not finish syncing" >&2; cat "$work/agent-$d.log" >&2; exit 1; }
  echo "$d: everything synced"
done

# No --cert/--key: `central query` takes the one hq-NAME.crt beside the CA (hq-demo.crt here).
hq() {
  "$bin/central" query --hub "$hub_addr" --server-name localhost --ca "$work/pki/ca.crt" "$@"
}
step "what HQ sees: records and reliability score per dealer"
hq dealers
step "what HQ sees: verdicts, and findings by rule"
hq findings
step "what HQ sees: lifecycle stages and service retention by region (all facts | clean facts only)"
hq lifecycle --by region
step "what HQ sees: one customer's 360 view"
hq export customers > "$work/customers.jsonl" 2>/dev/null
customer="$(head -n 1 "$work/customers.jsonl" | sed -n 's/.*"customerId":"\([^"]*\)".*/\1/p')"
[ -n "$customer" ] || { echo "the export listed no customer" >&2; exit 1; }
echo "$(wc -l < "$work/customers.jsonl") customers exported; showing $customer"
hq customer "$customer"
step "what HQ sees: conflicts between dealers waiting for a decision"
hq conflicts --open > "$work/conflicts.txt"
head -n 5 "$work/conflicts.txt"
echo "$(wc -l < "$work/conflicts.txt") open conflicts"
step "what D-1042's staff see: records that need a fix"
agent D-1042 verdicts --needs-fixing --lang en --limit 4

step "HQ reviews a flag on a D-1042 record and dismisses it: the new verdict reaches the branch"
hq flags --dealer D-1042 --status open --limit 200 > "$work/flags.txt"
# A flag (not a rejection: those are fixed by the dealer, not dismissed by HQ).
read -r flag_seq flag_rule < <(awk '$5 == "flag" { print $2, $4; exit }' "$work/flags.txt") || true
[ -n "${flag_seq:-}" ] || { cat "$work/flags.txt" >&2; echo "no open flag at D-1042 to review" >&2; exit 1; }
verdict_line() {
  agent D-1042 verdicts --lang en > "$work/verdicts.txt"
  grep -E "^seq +$flag_seq  " "$work/verdicts.txt" || true
}
echo "HQ dismisses $flag_rule on D-1042's record seq $flag_seq"
echo "before: $(verdict_line)"
hq review-flag D-1042 "$flag_seq" "$flag_rule" dismissed --comment "checked with the branch: the reading is right"
for _ in $(seq 1 100); do
  line="$(verdict_line)"
  case "$line" in *"(verdict v1)"*|"") sleep 0.1 ;; *) break ;; esac
done
echo "after:  $line"
case "$line" in *"(verdict v1)"*|"") echo "the dismissal did not reach D-1042" >&2; exit 1 ;; esac

step "stopping the agents and the hub (SIGTERM)"
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do wait "$pid"; done
pids=()
echo "everything stopped cleanly"

step "the hub's state rebuilt from its record log (central admin rebuild --check): same digest as live, incremental findings and vehicle facts equal the reference"
"$bin/central" admin rebuild --check --data-dir "$work/hub" --registry "$work/registry.json"
echo "demo done in $((SECONDS - started))s after the build"
