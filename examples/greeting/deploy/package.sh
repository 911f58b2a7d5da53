#!/usr/bin/env bash
# Builds a Lambda deployment package (a zip) for a temporal-lambda-worker bootstrap:
#
#   cargo lambda build --release --arm64 --output-format zip --bin <bin> --include ...
#
# The zip holds `bootstrap` (the worker binary, for the `provided.al2023` runtime) and, when they
# exist in the crate directory, `temporal.toml` (the client configuration the worker reads from
# $LAMBDA_TASK_ROOT) and the OpenTelemetry collector configuration.
#
# cargo-lambda comes from PyPI (it brings zig, used as the cross-linker); it is installed into
# target/tools/ when `cargo lambda` is not available. Run with --help for the options.
set -euo pipefail

CARGO_LAMBDA_VERSION="1.9.2"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../../.." && pwd)"

crate_dir="$repo_root/examples/greeting"
bin="greeting-worker"
arch="arm64"
features=""
out_dir=""
dry_run=false
extra_includes=()
collector_configs=(otel-collector-config.yaml collector.yaml)

usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

Builds <out-dir>/<bin>/bootstrap.zip with cargo lambda and prints its path on the last line.

Options:
  --crate-dir DIR     the worker crate (its Cargo.toml, temporal.toml, collector config)
                      (default: examples/greeting)
  --bin NAME          the binary to ship as bootstrap (default: greeting-worker)
  --arch ARCH         arm64 (default; Graviton, cheaper per GB-second) or x86_64
  --features LIST     cargo features to enable (e.g. otel)
  --include FILE      one more file to put in the zip, at its root (repeatable)
  --out-dir DIR       where the zip goes (default: <target dir>/lambda/<arch>)
  --dry-run           print the commands without running them
  -h, --help          this help

Environment: CARGO_LAMBDA (the cargo-lambda executable to use).
EOF
}

die() {
    echo "package.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --crate-dir) crate_dir="${2:?--crate-dir needs a value}"; shift 2 ;;
    --bin) bin="${2:?--bin needs a value}"; shift 2 ;;
    --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
    --features) features="${2:?--features needs a value}"; shift 2 ;;
    --include) extra_includes+=("${2:?--include needs a value}"); shift 2 ;;
    --out-dir) out_dir="${2:?--out-dir needs a value}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

case "$arch" in
arm64) arch_flag="--arm64" ;;
x86_64) arch_flag="--x86-64" ;;
*) die "--arch must be arm64 or x86_64, not '$arch'" ;;
esac
[ -f "$crate_dir/Cargo.toml" ] || die "no Cargo.toml in --crate-dir $crate_dir"
crate_dir="$(cd "$crate_dir" && pwd)"

# Files shipped next to the bootstrap: `--include` puts each at the root of the zip, which is
# $LAMBDA_TASK_ROOT (/var/task) at run time.
includes=()
[ -f "$crate_dir/temporal.toml" ] && includes+=("$crate_dir/temporal.toml")
for name in "${collector_configs[@]}"; do
    [ -f "$crate_dir/$name" ] && includes+=("$crate_dir/$name")
done
for file in "${extra_includes[@]+"${extra_includes[@]}"}"; do
    [ -f "$file" ] || $dry_run || die "--include $file: no such file"
    includes+=("$file")
done

if [ -z "$out_dir" ]; then
    target_dir="${CARGO_TARGET_DIR:-}"
    if [ -z "$target_dir" ]; then
        target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$crate_dir/Cargo.toml" 2>/dev/null |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null ||
            echo "$crate_dir/target")"
    fi
    out_dir="$target_dir/lambda/$arch"
fi

# cargo-lambda: $CARGO_LAMBDA, else `cargo lambda` if installed, else PyPI cargo-lambda in a
# virtual environment under target/tools/ (installed on first use).
cargo_lambda=(cargo lambda)
if [ -n "${CARGO_LAMBDA:-}" ]; then
    cargo_lambda=("$CARGO_LAMBDA" lambda)
elif ! cargo lambda --version >/dev/null 2>&1; then
    venv="$repo_root/target/tools/cargo-lambda-$CARGO_LAMBDA_VERSION"
    if [ ! -x "$venv/bin/cargo-lambda" ] && ! $dry_run; then
        echo "installing cargo-lambda (PyPI cargo-lambda==$CARGO_LAMBDA_VERSION) into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
    fi
    # cargo-lambda finds zig (from the ziglang wheel) through the venv's python.
    export PATH="$venv/bin:$PATH"
    cargo_lambda=("$venv/bin/cargo-lambda" lambda)
fi

# --disable-optimizations: cargo lambda would otherwise build with panic=abort (and, for arm64,
# -C target-cpu=neoverse-n1). A worker needs panics to unwind: the Temporal SDK turns a panicking
# workflow or activity into a failed task, and lambda_runtime a panicking handler into a function
# error; with abort, one panic kills the execution environment. The workspace's own
# [profile.release] (strip, LTO) still applies.
#
# cargo lambda stores each --include under the path it is given, so the files are copied into a
# staging directory and given by their bare names from there: they land at the zip's root.
out_dir="$(realpath -m "$out_dir")"
stage="$out_dir/.include"
command=("${cargo_lambda[@]}" build --release "$arch_flag" --output-format zip
    --disable-optimizations --manifest-path "$crate_dir/Cargo.toml" --bin "$bin" --lambda-dir "$out_dir")
[ -n "$features" ] && command+=(--features "$features")
for file in "${includes[@]+"${includes[@]}"}"; do
    command+=(--include "$(basename "$file")")
done
if ! $dry_run; then
    rm -rf "$stage"
    mkdir -p "$out_dir" "$stage"
    for file in "${includes[@]+"${includes[@]}"}"; do
        [ -e "$stage/$(basename "$file")" ] && die "two files to include are named $(basename "$file")"
        cp "$file" "$stage/"
    done
fi

echo "+ (cd $stage && ${command[*]})" >&2
zip="$out_dir/$bin/bootstrap.zip"
if $dry_run; then
    echo "$zip"
    exit 0
fi
started=$SECONDS
(cd "$stage" && "${command[@]}") >&2
[ -f "$zip" ] || die "cargo lambda build did not produce $zip"
bytes=$(wc -c <"$zip")
echo "built $zip ($((bytes / 1024)) KiB, $arch) in $((SECONDS - started)) s; contents:" >&2
python3 -m zipfile -l "$zip" >&2
echo "$zip"
