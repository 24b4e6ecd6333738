# shellcheck shell=bash
# Helpers for the .ci/setup.d scripts that start a background service. Sourced by them.

# rtb_on_exit COMMAND: run COMMAND when this shell exits, before any EXIT trap already set
# (by .ci/run or an earlier setup script), which still runs after it.
rtb_on_exit() {
    local previous_trap
    previous_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
    # shellcheck disable=SC2064
    trap "$1${previous_trap:+; $previous_trap}" EXIT
}

# rtb_wait_until COMMAND...: run COMMAND every 0.2 s until it succeeds, 50 tries, then once more;
# the status of the last run.
rtb_wait_until() {
    local _
    for _ in $(seq 1 50); do
        "$@" && return 0
        sleep 0.2
    done
    "$@"
}
