# shellcheck shell=bash
# A real OCI registry on loopback for the `deploy push` tests: Debian's docker-registry
# (the CNCF distribution registry) with basic auth from an htpasswd file (bcrypt, as the
# registry requires), storage in a throw-away directory, plain HTTP on 127.0.0.1 only.
#
# Sourced by .ci/run (so it must not `exit`); a developer may also source it by hand.
# Exports for the tests:
#   RTB_REGISTRY            host:port of the registry (127.0.0.1:<free port>)
#   RTB_REGISTRY_USERNAME   the one user in the htpasswd file
#   RTB_REGISTRY_PASSWORD   its password (random per run)
#
# Knobs (environment): RTB_REGISTRY_PORT (default: a free port), RTB_REGISTRY_DIR (default: a new
# temporary directory). The registry stops when the sourcing shell exits.

# shellcheck source=.ci/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
# shellcheck source=.ci/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/../service.sh"

rtb_registry_setup() {
    local packages=(docker-registry apache2-utils curl python3)
    rtb_apt_install "${packages[@]}" || return 1

    # Reuse a registry this shell already started (a developer sourcing the script twice).
    if [ -n "${RTB_REGISTRY:-}" ] && [ -n "${RTB_REGISTRY_PASSWORD:-}" ] \
        && rtb_registry_answers "$RTB_REGISTRY"; then
        echo "registry at $RTB_REGISTRY already running"
        return 0
    fi

    local dir="${RTB_REGISTRY_DIR:-}"
    if [ -z "$dir" ]; then
        dir=$(mktemp -d /var/tmp/rtb-registry.XXXXXX)
    fi
    mkdir -p "$dir/data"
    local port="${RTB_REGISTRY_PORT:-}"
    if [ -z "$port" ]; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    local user=rtb-ci
    local password
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    # -B: bcrypt, the only hash the registry accepts; other entries are silently ignored.
    htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
    cat >"$dir/config.yml" <<YAML
# Written by .ci/setup.d/20-registry.sh (rtb-inference CI).
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: rtb-registry
    path: $dir/htpasswd
YAML
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    RTB_REGISTRY_PID=$!
    rtb_on_exit "kill $RTB_REGISTRY_PID 2>/dev/null || true; rm -rf $dir"

    if ! rtb_wait_until rtb_registry_answers "127.0.0.1:$port"; then
        echo "docker-registry did not answer on 127.0.0.1:$port:" >&2
        tail -20 "$dir/registry.log" >&2
        return 1
    fi
    export RTB_REGISTRY="127.0.0.1:$port"
    export RTB_REGISTRY_USERNAME="$user"
    export RTB_REGISTRY_PASSWORD="$password"
    echo "RTB_REGISTRY=$RTB_REGISTRY (basic auth user $RTB_REGISTRY_USERNAME, data in $dir)"
}

# The registry answers /v2/ with 401 and a Basic challenge when auth is on.
rtb_registry_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/v2/" 2>/dev/null) || return 1
    [ "$code" = "401" ]
}

rtb_registry_setup
