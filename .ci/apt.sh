# shellcheck shell=bash
# rtb_apt_install PACKAGE...: install the Debian packages that are not installed yet, quietly;
# refresh the package lists only when the install fails without them (a new machine).
# Sourced by the .ci/setup.d scripts.

rtb_apt_install() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$package")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    echo "installing ${missing[*]}"
    local install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
    DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null; }
}
