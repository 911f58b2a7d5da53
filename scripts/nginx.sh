# Sourced by scripts/test: finds nginx for the TLS and API-key proxy of the security tests
# (crates/e2e-tests/tests/security.rs), or installs Debian's package when running as root, and
# exports NGINX. Order: $NGINX, then `nginx` on PATH, then /usr/sbin/nginx.

ensure_nginx() {
    if [ -n "${NGINX:-}" ]; then
        [ -x "$NGINX" ] || { echo "NGINX=$NGINX is not an executable" >&2; return 1; }
        return 0
    fi
    local found
    found="$(command -v nginx 2>/dev/null || true)"
    if [ -z "$found" ] && [ -x /usr/sbin/nginx ]; then
        found=/usr/sbin/nginx
    fi
    if [ -z "$found" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "nginx is missing (the security tests put it in front of the Temporal dev server): run 'sudo apt-get install -y --no-install-recommends nginx' or set NGINX" >&2
            return 1
        fi
        echo "installing nginx (Debian package) for the security tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
        found=/usr/sbin/nginx
    fi
    NGINX="$found"
    export NGINX
}
