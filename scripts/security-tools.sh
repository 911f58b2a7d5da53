# Sourced by scripts/test: what the security tests (crates/e2e-tests/tests/security.rs) need
# besides Rust: nginx, the TLS and API-key proxy they put in front of the Temporal dev server,
# and the openssl command line, which makes their certificates. Missing ones are installed from
# Debian's packages when running as root; otherwise the function fails with a one-line message.
# Exports NGINX: $NGINX, else `nginx` on PATH, else /usr/sbin/nginx.

ensure_security_tools() {
    local missing=()
    if [ -n "${NGINX:-}" ]; then
        [ -x "$NGINX" ] || { echo "NGINX=$NGINX is not an executable" >&2; return 1; }
    else
        NGINX="$(command -v nginx 2>/dev/null || true)"
        if [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ]; then
            NGINX=/usr/sbin/nginx
        fi
        [ -n "$NGINX" ] || missing+=(nginx)
    fi
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "the security tests need ${missing[*]}: run 'sudo apt-get install -y --no-install-recommends ${missing[*]}' (or set NGINX to an nginx binary)" >&2
            return 1
        fi
        echo "installing ${missing[*]} (Debian packages) for the security tests" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        [ -n "${NGINX:-}" ] || NGINX=/usr/sbin/nginx
    fi
    export NGINX
}
