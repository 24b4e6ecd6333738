# shellcheck shell=bash
# Containers for the image tests, from nothing, on a Debian bookworm machine with no Docker daemon
# and no image registry: rootful podman behind a Docker-compatible socket, and a Debian base image
# made with debootstrap (cached: a second run on the same machine takes a few seconds).
#
# Sourced by .ci/run (so it must not `exit`); a developer may also run or source it by hand.
# Exports for the tests and `python -m benchmark coldstart`:
#   DOCKER_HOST      unix socket of `podman system service`: the docker CLI and SDK drive podman through it
#   RTB_BASE_IMAGE   the local base image to build the Dockerfile FROM (--build-arg BASE_IMAGE=...)
#
# Knobs (environment): RTB_BASE_IMAGE (default localhost/rtb-base:bookworm), RTB_PODMAN_SOCKET
# (default /run/rtb-podman/podman.sock), RTB_DEBIAN_MIRROR (default: this machine's apt mirror).

# shellcheck source=.ci/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"
# shellcheck source=.ci/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/../service.sh"

rtb_containers_setup() {
    local base_image="${RTB_BASE_IMAGE:-localhost/rtb-base:bookworm}"
    local socket="${RTB_PODMAN_SOCKET:-/run/rtb-podman/podman.sock}"
    local packages=(podman runc conmon netavark aardvark-dns iptables uidmap slirp4netns
        fuse-overlayfs catatonit debootstrap ca-certificates curl)

    # 1. Packages: podman with runc (crun is not needed), netavark for port publishing, debootstrap.
    rtb_apt_install "${packages[@]}" || return 1

    # 2. Engine configuration. The CA bundle is mounted into every container, including the
    #    RUN steps of a build, so that pip inside a build trusts this network's certificate authority.
    #    The Dockerfile itself knows nothing of it: it builds unchanged with Docker anywhere.
    mkdir -p /etc/containers
    local conf=/etc/containers/containers.conf
    local wanted
    wanted=$(cat <<'EOF'
# Written by .ci/setup.d/10-containers.sh (rtb-inference CI).
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]
volumes = ["/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
    if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$wanted" ]; then
        # Someone else's configuration is kept aside, never silently lost.
        if [ -f "$conf" ] && ! grep -q '^# Written by .ci/setup.d/10-containers.sh' "$conf"; then
            cp -p "$conf" "$conf.before-rtb"
            echo "kept the previous $conf as $conf.before-rtb"
        fi
        printf '%s\n' "$wanted" >"$conf"
    fi

    # 3. The Docker-compatible API socket. Reused when it already answers (a second run, or a
    #    developer's shell); otherwise started in the background and stopped when this shell exits.
    export DOCKER_HOST="unix://$socket"
    if ! rtb_docker_api_answers "$socket"; then
        mkdir -p "$(dirname "$socket")"
        rm -f "$socket"
        podman system service --time=0 "unix://$socket" >/var/log/rtb-podman-service.log 2>&1 &
        RTB_PODMAN_SERVICE_PID=$!
        rtb_on_exit "kill $RTB_PODMAN_SERVICE_PID 2>/dev/null || true"
        rtb_wait_until rtb_docker_api_answers "$socket" || {
            echo "podman system service did not answer on $socket:" >&2
            cat /var/log/rtb-podman-service.log >&2
            return 1
        }
    fi

    # 4. The base image: Debian's own python3 (3.11) on a minimal bookworm, no registry needed.
    export RTB_BASE_IMAGE="$base_image"
    if podman image exists "$base_image"; then
        echo "base image $base_image present"
    else
        rtb_make_base_image "$base_image"
    fi
    echo "DOCKER_HOST=$DOCKER_HOST RTB_BASE_IMAGE=$RTB_BASE_IMAGE"
}

rtb_docker_api_answers() {
    local socket="$1"
    [ -S "$socket" ] && curl -fsS --max-time 2 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1
}

rtb_make_base_image() {
    local image="$1"
    local mirror="${RTB_DEBIAN_MIRROR:-}"
    if [ -z "$mirror" ]; then
        # shellcheck disable=SC2016  # $(REPO_URI) is apt's template syntax, not the shell's
        mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null \
            | grep -m1 '/debian/$' || true)
        mirror="${mirror:-http://deb.debian.org/debian/}"
    fi
    local rootfs
    rootfs=$(mktemp -d /var/tmp/rtb-base.XXXXXX)
    echo "debootstrap bookworm from $mirror (about a minute)"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >/var/log/rtb-debootstrap.log 2>&1; then
        echo "debootstrap failed:" >&2
        tail -20 /var/log/rtb-debootstrap.log >&2
        rm -rf "$rootfs"
        return 1
    fi
    # What a slim public image also leaves out: package caches, indexes, docs and translations.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*
    tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$image" >/dev/null
    rm -rf "$rootfs"
    echo "base image $image: $(podman image inspect --format '{{.Size}}' "$image") bytes"
}

rtb_containers_setup
