#!/usr/bin/env bash
# Runs each fuzz target for a while, then minimises its corpus.
#
#   fuzz/run.sh                 # every target, 60 s each (the short run)
#   fuzz/run.sh 3600            # the long run: an hour each (not part of CI)
#   fuzz/run.sh 300 record      # one target
#
# Inputs: fuzz/seeds/<target> (hand-made, `cargo run -p hamgam-tests --bin fuzz-seeds -- fuzz/seeds`)
# and fuzz/corpus/<target> (what earlier runs kept; commit it after a run). A failing input is
# written to fuzz/artifacts/<target>/; once fixed, copy it to fuzz/regressions/<target>/ so
# `cargo test -p hamgam-tests --test fuzz_corpora` keeps checking it.
#
# Needs cargo-fuzz (installed from crates.io when missing). The first build takes about five
# minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(text_normalisation identifiers record sync_session)
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2
fi
# The sanitizer flags cargo-fuzz passes are unstable; RUSTC_BOOTSTRAP lets the machine's one
# (stable) toolchain accept them, so no nightly needs fetching.
export RUSTC_BOOTSTRAP=1

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    echo "== $target: ${seconds}s"
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1; then
        echo "== $target FAILED: the input is in fuzz/artifacts/$target/ (reproduce with" >&2
        echo "   RUSTC_BOOTSTRAP=1 cargo fuzz run $target <that file>); once fixed, copy it to" >&2
        echo "   fuzz/regressions/$target/" >&2
        exit 1
    fi
    echo "== $target: minimising the corpus"
    cargo fuzz cmin "$target" "corpus/$target" -- -rss_limit_mb=4096 >/dev/null 2>&1 ||
        echo "   (cmin failed; the corpus is kept as it is)"
    echo "== $target: $(ls "corpus/$target" | wc -l) inputs kept in fuzz/corpus/$target"
done
echo "== all fuzz targets ran clean for ${seconds}s each"
