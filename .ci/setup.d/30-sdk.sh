# shellcheck shell=bash
# The SageMaker Python SDK's local mode for tests/examples (the notebook in examples/):
#   - docker-compose (Debian's 1.29, Python, speaks the Docker API): the SDK runs the image with
#     `docker-compose up`, through DOCKER_HOST, i.e. podman's socket from 10-containers.sh;
#   - the docker CLI: the SDK asks `docker compose version`, `docker info` and `docker context
#     inspect` before it starts anything (Debian's docker.io only where no docker CLI is installed);
#   - .venv-sdk from requirements/sdk.txt (`make sdk`): the SDK, nbclient, nbconvert, ipykernel.
#
# Sourced by .ci/run (so it must not `exit`); a developer may also source it by hand.

# shellcheck source=.ci/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../apt.sh"

rtb_sdk_setup() {
    local packages=(docker-compose make python3-venv)
    command -v docker >/dev/null 2>&1 || packages+=(docker.io)
    rtb_apt_install "${packages[@]}" || return 1

    local started=$SECONDS
    make --no-print-directory sdk || return 1
    echo "SDK venv .venv-sdk ready in $((SECONDS - started)) s ($(docker-compose version --short 2>/dev/null || echo '?') docker-compose)"
}

rtb_sdk_setup
