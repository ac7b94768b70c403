#!/usr/bin/env bash
# Builds the two Debian packages (hamgam-central, hamgam-dealer-agent) with cargo-deb, checks
# them with lintian, installs them on this machine with dpkg -i, checks what they did (the
# binaries, the user, the folders and their modes, the units: the same files as deploy/systemd,
# `systemd-analyze verify` and `security`, enabled and not started, skipped without a config),
# runs the installed hub and agent as the user hamgam on the packages' folders, and purges them
# again (twice: empty folders go, a store holding data is kept and named). Leaves the machine as
# it found it (it purges leftovers of an interrupted run first). Fails loudly at the first
# failed check.
#
#   sudo ./deploy/package.sh              # needs root (dpkg), Debian or Ubuntu with systemd
#   HAMGAM_PACKAGE_FAST=0 ...             # xz at its best, as shipped (a minute more a package)
#
# Installs what it needs if missing: cargo-deb (`cargo install cargo-deb --locked`, from
# crates.io) and lintian (apt-get). Without lintian installable it fails, unless
# HAMGAM_SKIP_LINTIAN=1 says to go on without it (and then it says, at the end, that lintian
# did not run). The .debs are left in <cargo target dir>/debian/.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUST_LIB_BACKTRACE=0
started=$SECONDS
step() { printf '\n== [%3ss] %s\n' "$((SECONDS - started))" "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
not_run=()

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges packages (dpkg -i, dpkg --purge)"
for tool in dpkg dpkg-deb systemd-analyze readelf setpriv; do
  command -v "$tool" >/dev/null || fail "$tool not found: this check needs a Debian-like system with systemd installed"
done

packages=(hamgam-central hamgam-dealer-agent)
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || fail "no workspace version in Cargo.toml"

# --- leftovers of an interrupted run, and what this machine had before --------------------
installed() { dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null | grep -qx 'installed\|config-files\|half-installed\|half-configured\|unpacked'; }
step "this machine before: leftovers of an interrupted run are purged"
state_file=/var/tmp/hamgam-package-check.state
if [ -f "$state_file" ]; then
  # A previous run stopped before its cleanup: it wrote down what it made.
  # shellcheck disable=SC1090
  . "$state_file"
  echo "a previous run was interrupted (user_made=${user_made:-0}): cleaning up after it"
  # Its hub, if it was killed while the hub ran (the pid, checked to be that hub still).
  if [ -n "${hub_pid:-}" ] && grep -qa "hamgam-package\." "/proc/$hub_pid/cmdline" 2>/dev/null; then
    kill -TERM "$hub_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$hub_pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped its hub (pid $hub_pid)"
  fi
  [ -n "${work:-}" ] && case "$work" in */hamgam-package.*) rm -rf "$work" ;; esac
else
  user_made=0
fi
for p in "${packages[@]}"; do
  if installed "$p"; then
    if [ -f "$state_file" ]; then
      dpkg --purge "$p" >/dev/null
      echo "purged $p left by the interrupted run"
    else
      fail "$p is installed on this machine and not by this script: it would purge it (dpkg --purge $p first, or run the check elsewhere)"
    fi
  fi
done
for conf in /etc/hamgam/hub.toml /etc/hamgam/agent.toml; do
  [ ! -e "$conf" ] || fail "$conf exists: this machine looks configured for Hamgam; run the check elsewhere"
done
if [ -f "$state_file" ]; then
  rm -rf /var/lib/hamgam/hub /var/lib/hamgam/agent
  rmdir /var/lib/hamgam /etc/hamgam 2>/dev/null || true
else
  for d in /var/lib/hamgam/hub /var/lib/hamgam/agent; do
    [ ! -e "$d" ] || fail "$d exists: this machine holds a Hamgam store; run the check elsewhere"
  done
  if getent passwd hamgam >/dev/null; then user_made=0; else user_made=1; fi
fi
echo "user_made=$user_made" > "$state_file"
echo "the user hamgam $( [ "$user_made" = 1 ] && echo 'was not on this machine before this check (the packages make it; removed at the end)' || echo 'exists already (kept)')"

work="$(mktemp -d "${TMPDIR:-/tmp}/hamgam-package.XXXXXX")"
echo "work=$work" >> "$state_file"
pids=()
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for p in "${packages[@]}"; do
    if installed "$p"; then dpkg --purge "$p" >/dev/null 2>&1 || echo "cleanup: dpkg --purge $p failed" >&2; fi
  done
  # What the second purge kept on purpose (stores with data), and the user if this run made it.
  rm -rf /var/lib/hamgam/hub /var/lib/hamgam/agent
  rmdir /var/lib/hamgam /etc/hamgam 2>/dev/null || true
  if [ "$user_made" = 1 ] && getent passwd hamgam >/dev/null; then
    userdel hamgam 2>/dev/null || echo "cleanup: userdel hamgam failed" >&2
    getent group hamgam >/dev/null && { groupdel hamgam 2>/dev/null || true; }
  fi
  rm -rf "$work" "$state_file"
  if [ "$status" = 0 ]; then
    echo "cleaned up: packages purged, the machine as before"
  else
    echo "cleaned up after the failure: packages purged, the machine as before" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ---------------------------------------------------------------------------------
step "tools: cargo-deb and lintian"
if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo-deb missing: cargo install cargo-deb --locked"
  cargo install cargo-deb --locked
fi
echo "cargo-deb $(cargo deb --version 2>&1 | head -n 1)"
lintian=1
if ! command -v lintian >/dev/null; then
  echo "lintian missing: apt-get install lintian"
  if ! { apt-get install -y --no-install-recommends lintian >"$work/apt.log" 2>&1 ||
         { apt-get update >>"$work/apt.log" 2>&1 &&
           apt-get install -y --no-install-recommends lintian >>"$work/apt.log" 2>&1; }; }; then
    tail -n 5 "$work/apt.log" >&2
    if [ -n "${HAMGAM_SKIP_LINTIAN:-}" ]; then
      lintian=0
      not_run+=("lintian (not installable here: apt-get failed; HAMGAM_SKIP_LINTIAN=1)")
      echo "lintian could not be installed: going on without it (HAMGAM_SKIP_LINTIAN=1)" >&2
    else
      fail "lintian could not be installed (apt-get failed, above); HAMGAM_SKIP_LINTIAN=1 goes on without it"
    fi
  fi
fi
[ "$lintian" = 1 ] && echo "lintian $(lintian --version | head -n 1)"

# --- build ---------------------------------------------------------------------------------
step "building central and dealer-agent (${HAMGAM_PACKAGE_PROFILE:-release}) and the two .debs"
build_started=$SECONDS
# One cargo build for both (as deploy/demo.sh does: the same feature set, so one build of the
# dependencies), then cargo-deb packages what it built.
# HAMGAM_PACKAGE_PROFILE=package-check (as .ci/run sets it) builds quickly for the check; the
# default, release, is what ships.
profile="${HAMGAM_PACKAGE_PROFILE:-release}"
echo "cargo profile: $profile"
cargo build --profile "$profile" --locked -p hamgam-central -p hamgam-dealer-agent
metadata="$(cargo metadata --format-version 1 --no-deps)"
target_root="$(printf '%s' "$metadata" | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[ -d "$target_root" ] || fail "cannot find cargo's target folder (cargo metadata said '$target_root')"
debs="$target_root/debian"
mkdir -p "$debs"
declare -A deb
# xz at its best takes about a minute a package here; --fast (a lower level, ~20 % larger) is
# enough to check them. HAMGAM_PACKAGE_FAST=0: the packages as they would ship.
fast=--fast
[ "${HAMGAM_PACKAGE_FAST:-1}" = 0 ] && fast=
for p in "${packages[@]}"; do
  rm -f "$debs/${p}_"*.deb "$debs/${p}-dbgsym_"*.ddeb
  cargo deb --no-build --locked --profile "$profile" $fast -p "$p" --output "$debs" >"$work/cargo-deb-$p.log" 2>&1 ||
    { cat "$work/cargo-deb-$p.log" >&2; fail "cargo deb -p $p failed"; }
  deb[$p]="$(ls "$debs/${p}_"*.deb)"
  [ -f "${deb[$p]}" ] || fail "cargo deb -p $p made no .deb in $debs"
  ok "${deb[$p]} ($(du -k "${deb[$p]}" | cut -f1) KiB; its debug info: $(basename "$(ls "$debs/${p}-dbgsym_"*.ddeb)"))"
done
echo "build and packaging: $((SECONDS - build_started)) s"

# --- what is in them -----------------------------------------------------------------------
step "contents: binary, unit (deploy/systemd's own file), example config, maintainer scripts"
check_contents() {
  local p="$1" bin="$2" unit="$3" example="$4"
  local list="$work/$p.contents"
  dpkg-deb -c "${deb[$p]}" | awk '{print $6}' | sed 's#^\./#/#' > "$list"
  for f in "/usr/bin/$bin" "/usr/lib/systemd/system/$unit" "/usr/share/doc/$p/examples/$example" \
           "/usr/share/doc/$p/copyright" "/usr/share/doc/$p/changelog.Debian.gz"; do
    grep -qx "$f" "$list" || { cat "$list" >&2; fail "$p: $f is not in the package"; }
  done
  if grep -q '^/usr/local\|^/etc/' "$list"; then
    fail "$p ships files under /usr/local or /etc (config is the administrator's): $(grep '^/usr/local\|^/etc/' "$list")"
  fi
  mkdir -p "$work/x-$p"
  dpkg-deb -x "${deb[$p]}" "$work/x-$p"
  cmp "$work/x-$p/usr/lib/systemd/system/$unit" "deploy/systemd/$unit" ||
    fail "$p: its $unit differs from deploy/systemd/$unit (the package must ship that file)"
  if readelf -SW "$work/x-$p/usr/bin/$bin" | grep -q ' \.debug_\(info\|line\|abbrev\) '; then
    fail "$p: /usr/bin/$bin still has debug sections (cargo-deb should have moved them to the -dbgsym .ddeb)"
  fi
  dpkg-deb -e "${deb[$p]}" "$work/ctl-$p"
  grep -q 'deb-systemd-helper enable' "$work/ctl-$p/postinst" || fail "$p: postinst does not enable $unit"
  if grep -q 'deb-systemd-invoke start' "$work/ctl-$p/postinst"; then
    fail "$p: postinst starts $unit (it must only be enabled: it has no config yet)"
  fi
  grep -q 'adduser --system' "$work/ctl-$p/postinst" || fail "$p: postinst does not make the system user"
  ok "$p: /usr/bin/$bin (stripped, $(du -k "$work/x-$p/usr/bin/$bin" | cut -f1) KiB), $unit identical to deploy/systemd/$unit, examples/$example; postinst makes the user, enables and does not start the unit"
  local depends
  depends="$(dpkg-deb -f "${deb[$p]}" Depends)"
  case "$depends" in *adduser*) ;; *) fail "$p: Depends lacks adduser: $depends" ;; esac
  ok "$p $(dpkg-deb -f "${deb[$p]}" Version): Depends: $depends"
}
check_contents hamgam-central central hamgam-central.service hub.toml
check_contents hamgam-dealer-agent dealer-agent hamgam-agent.service agent.toml

if [ "$lintian" = 1 ]; then
  step "lintian (fails on errors and warnings; accepted tags are overridden in deploy/debian/*.lintian-overrides with their reason)"
  for p in "${packages[@]}"; do
    if lintian --fail-on error,warning --display-info "${deb[$p]}" > "$work/lintian-$p.txt" 2>&1; then
      ok "$p: lintian: no errors or warnings ($(grep -c "^$p: " "deploy/debian/$p.lintian-overrides") overridden); its notes:"
      grep -v '^running with root privileges' "$work/lintian-$p.txt" | sed 's/^/     /' || true
    else
      cat "$work/lintian-$p.txt" >&2
      fail "lintian found errors or warnings in $p"
    fi
  done
fi

# --- install, and what it did --------------------------------------------------------------
mode_of() { stat -c '%a %U:%G' "$1"; }
expect_mode() {
  local path="$1" want="$2" got
  [ -e "$path" ] || fail "$path does not exist"
  got="$(mode_of "$path")"
  [ "$got" = "$want" ] || fail "$path is $got, expected $want"
  ok "$path $got"
}
check_installed() {
  for p in "${packages[@]}"; do
    [ "$(dpkg-query -W -f '${db:Status-Abbrev}' "$p")" = "ii " ] || fail "$p is not installed and configured: $(dpkg-query -W -f '${db:Status-Abbrev}' "$p")"
  done
  [ "$(/usr/bin/central --version)" = "central $version" ] || fail "/usr/bin/central --version says '$(/usr/bin/central --version)', expected central $version"
  [ "$(/usr/bin/dealer-agent --version)" = "dealer-agent $version" ] || fail "/usr/bin/dealer-agent --version says '$(/usr/bin/dealer-agent --version)'"
  ok "central $version and dealer-agent $version in /usr/bin"
  local entry uid shell home
  entry="$(getent passwd hamgam)" || fail "no user hamgam"
  uid="$(echo "$entry" | cut -d: -f3)"; home="$(echo "$entry" | cut -d: -f6)"; shell="$(echo "$entry" | cut -d: -f7)"
  [ "$uid" -lt 1000 ] || fail "hamgam has uid $uid: not a system user"
  [ "$home" = /var/lib/hamgam ] || fail "hamgam's home is $home, expected /var/lib/hamgam"
  [ "$shell" = /usr/sbin/nologin ] || fail "hamgam's shell is $shell, expected /usr/sbin/nologin"
  [ "$(id -gn hamgam)" = hamgam ] || fail "hamgam's group is $(id -gn hamgam)"
  ok "system user hamgam (uid $uid, group hamgam, home $home, shell $shell)"
  expect_mode /etc/hamgam "750 root:hamgam"
  expect_mode /var/lib/hamgam "755 root:root"
  expect_mode /var/lib/hamgam/hub "700 hamgam:hamgam"
  expect_mode /var/lib/hamgam/agent "710 hamgam:hamgam"
  for unit in hamgam-central.service hamgam-agent.service; do
    local file=/usr/lib/systemd/system/$unit link=/etc/systemd/system/multi-user.target.wants/$unit
    [ -L "$link" ] && [ "$(readlink -f "$link")" = "$(readlink -f "$file")" ] ||
      fail "$unit is not enabled: $link -> '$(readlink "$link" || true)'"
    # systemctl reads the unit files and links itself when systemd is not running.
    [ "$(systemctl is-enabled "$unit" 2>&1)" = enabled ] || fail "systemctl is-enabled $unit says: $(systemctl is-enabled "$unit" 2>&1)"
    ok "$unit enabled ($link)"
    local verify
    if ! verify="$(systemd-analyze verify "$file" 2>&1)" || [ -n "$verify" ]; then
      echo "$verify" >&2; fail "systemd-analyze verify $file"
    fi
    local exposure
    exposure="$(systemd-analyze security --offline=true "$file" 2>/dev/null |
      sed -n 's/^→ Overall exposure level for .*: \([0-9.]*\).*/\1/p')"
    [ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level for $file"
    awk -v e="$exposure" 'BEGIN { exit !(e <= 3.0) }' || fail "$unit: exposure $exposure above 3.0"
    ok "$unit: systemd-analyze verify clean (ExecStart $(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$file") installed), security exposure $exposure"
    # Not configured yet: the unit's conditions fail, so systemd would skip it, not fail it.
    local conditions
    mapfile -t conditions < <(grep '^Condition' "$file")
    [ "${#conditions[@]}" -gt 0 ] || fail "$unit has no Condition*= line: it would start unconfigured"
    if systemd-analyze condition "${conditions[@]}" >"$work/condition.txt" 2>&1; then
      cat "$work/condition.txt" >&2; fail "$unit's conditions hold without a config: it would start unconfigured"
    fi
    ok "$unit without its config: $(grep -m1 'failed' "$work/condition.txt" | sed 's/^[^:]*: //') (skipped, not failed)"
  done
  if [ -d /run/systemd/system ]; then
    for unit in hamgam-central.service hamgam-agent.service; do
      ! systemctl is-active --quiet "$unit" || fail "$unit is running after install without a config"
      ok "$unit not running (systemd is PID 1 here)"
    done
  elif [ "${#not_run[@]}" = 0 ] || [[ "${not_run[*]}" != *"systemd is not PID 1"* ]]; then
    not_run+=("starting the units under a running systemd (systemd is not PID 1 on this machine): checked offline with systemd-analyze instead, and the installed binaries run by hand as hamgam")
  fi
}

step "install: dpkg -i (first install: makes the user and folders)"
dpkg -i "${deb[hamgam-central]}" "${deb[hamgam-dealer-agent]}" >"$work/dpkg-1.log" 2>&1 ||
  { cat "$work/dpkg-1.log" >&2; fail "dpkg -i failed"; }
check_installed

step "purge (nothing stored yet): packages, enablement and the empty folders go"
check_purged() {
  for p in "${packages[@]}"; do
    ! installed "$p" || fail "$p still known to dpkg after purge"
  done
  for f in /usr/bin/central /usr/bin/dealer-agent /usr/lib/systemd/system/hamgam-central.service \
           /usr/lib/systemd/system/hamgam-agent.service \
           /etc/systemd/system/multi-user.target.wants/hamgam-central.service \
           /etc/systemd/system/multi-user.target.wants/hamgam-agent.service; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is still there after purge"
  done
  ok "binaries, units and their enablement gone"
}
dpkg --purge "${packages[@]}" >"$work/purge-1.log" 2>&1 || { cat "$work/purge-1.log" >&2; fail "dpkg --purge failed"; }
check_purged
for d in /var/lib/hamgam/hub /var/lib/hamgam/agent /var/lib/hamgam /etc/hamgam; do
  [ ! -e "$d" ] || fail "$d is still there after purging packages that stored nothing"
done
ok "/var/lib/hamgam and /etc/hamgam gone (they were empty)"
getent passwd hamgam >/dev/null || fail "purge removed the user hamgam (it must be kept)"
ok "the user hamgam kept (files may still be its; deluser --system hamgam removes it)"

step "install again (the user exists now), then once more over itself (the upgrade path)"
dpkg -i "${deb[hamgam-central]}" "${deb[hamgam-dealer-agent]}" >"$work/dpkg-2.log" 2>&1 ||
  { cat "$work/dpkg-2.log" >&2; fail "dpkg -i (second install) failed"; }
# An administrator's loosened store is tightened again by the next configure.
chmod 0755 /var/lib/hamgam/hub
dpkg -i "${deb[hamgam-central]}" "${deb[hamgam-dealer-agent]}" >"$work/dpkg-3.log" 2>&1 ||
  { cat "$work/dpkg-3.log" >&2; fail "dpkg -i over the installed packages failed"; }
check_installed

# --- the installed binaries at work, as the user hamgam, on the packages' folders ----------
step "the installed hub and agent at work as hamgam (central serve + central health, dealer-agent record + sync)"
as_hamgam_cmd=(setpriv --reuid hamgam --regid hamgam --init-groups --)
as_hamgam() { "${as_hamgam_cmd[@]}" "$@"; }
pki="$work/pki"
/usr/bin/central pki init --dir "$pki" >/dev/null
/usr/bin/central pki issue hub --dir "$pki" --dns localhost --ip 127.0.0.1 >/dev/null
/usr/bin/central pki issue dealer D-1042 --dir "$pki" >/dev/null
/usr/bin/central pki issue ops probe --dir "$pki" >/dev/null
chown -R hamgam:hamgam "$work"
# Not through the function: $! must be the hub itself (setpriv execs it), not a subshell.
"${as_hamgam_cmd[@]}" /usr/bin/central serve --listen 127.0.0.1:0 --addr-file "$work/hub.addr" \
  --data-dir /var/lib/hamgam/hub --ca "$pki/ca.crt" --cert "$pki/hub.crt" --key "$pki/hub.key" \
  2>"$work/hub.log" &
pids+=($!)
hub_pid=$!
echo "hub_pid=$hub_pid" >> "$state_file"
for _ in $(seq 1 100); do
  [ -s "$work/hub.addr" ] && break
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/hub.log" >&2; fail "the installed central serve did not start as hamgam"; }
  sleep 0.1
done
[ -s "$work/hub.addr" ] || fail "the hub did not report its address"
hub_addr="$(cat "$work/hub.addr")"
health=(/usr/bin/central health --hub "$hub_addr" --server-name localhost --ca "$pki/ca.crt"
        --cert "$pki/ops-probe.crt" --key "$pki/ops-probe.key")
as_hamgam "${health[@]}" || { cat "$work/hub.log" >&2; fail "central health did not say SERVING"; }
ok "central serve runs as hamgam on /var/lib/hamgam/hub, and central health says SERVING"
if as_hamgam /usr/bin/central health --hub "$hub_addr" --server-name localhost --ca "$pki/ca.crt" \
    --cert "$pki/dealer-D-1042.crt" --key "$pki/hub.key" >/dev/null 2>&1; then
  fail "central health passed with a key that is not the certificate's"
fi
ok "central health fails with a mismatched key"
agent=(/usr/bin/dealer-agent --dealer D-1042 --data-dir /var/lib/hamgam/agent --hub "$hub_addr"
       --server-name localhost --ca "$pki/ca.crt" --cert "$pki/dealer-D-1042.crt" --key "$pki/dealer-D-1042.key")
as_hamgam "${agent[@]}" record customer -f customerRef=C-1 -f partyType=PARTY_TYPE_PERSON \
  -f givenName=مریم -f familyName=رضایی -f mobile=09121234567 >"$work/record.txt" 2>&1 ||
  { cat "$work/record.txt" >&2; fail "dealer-agent record as hamgam failed"; }
as_hamgam "${agent[@]}" sync >"$work/sync.txt" 2>&1 || { cat "$work/sync.txt" >&2; fail "dealer-agent sync failed"; }
pending="$(as_hamgam "${agent[@]}" status --json | sed -n 's/.*"pending":\([0-9]*\).*/\1/p')"
[ "$pending" = 0 ] || fail "the agent still has '$pending' records pending after sync"
ok "dealer-agent recorded as hamgam in /var/lib/hamgam/agent and synced it to the hub (0 pending)"
kill -TERM "$hub_pid"
wait "$hub_pid" || { cat "$work/hub.log" >&2; fail "central serve did not stop cleanly on SIGTERM"; }
pids=()
ok "central serve stopped cleanly on SIGTERM"
expect_mode /var/lib/hamgam/hub "700 hamgam:hamgam"
expect_mode /var/lib/hamgam/agent "710 hamgam:hamgam"
loose="$(find /var/lib/hamgam/hub /var/lib/hamgam/agent -type f ! -perm 0600 -printf '%m %p\n')"
[ -z "$loose" ] || fail "store files not 0600: $loose"
others="$(find /var/lib/hamgam/hub /var/lib/hamgam/agent ! -user hamgam -printf '%u %p\n')"
[ -z "$others" ] || fail "store files not hamgam's: $others"
ok "every store file 0600 and hamgam's ($(find /var/lib/hamgam/hub /var/lib/hamgam/agent -type f | wc -l) files)"

step "purge with data stored: packages go, the stores are kept and named"
dpkg --purge "${packages[@]}" >"$work/purge-2.log" 2>&1 || { cat "$work/purge-2.log" >&2; fail "dpkg --purge failed"; }
check_purged
for d in /var/lib/hamgam/hub /var/lib/hamgam/agent; do
  [ -n "$(ls -A "$d" 2>/dev/null)" ] || fail "$d (with data) was removed by purge"
  grep -q "$d is not empty and is kept" "$work/purge-2.log" ||
    { cat "$work/purge-2.log" >&2; fail "purge did not say that it kept $d"; }
done
ok "both stores kept, and purge said so:"
grep 'is kept' "$work/purge-2.log" | sed 's/^/     /'

step "done in $((SECONDS - started)) s"
if [ "${#not_run[@]}" -gt 0 ]; then
  echo "NOT checked here:"
  printf '  - %s\n' "${not_run[@]}"
fi
echo "packages: ${deb[hamgam-central]} ${deb[hamgam-dealer-agent]}"
