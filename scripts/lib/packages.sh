# Installs Debian/Ubuntu packages that are missing (sourced by the other
# scripts). Uses sudo when not root; on other systems it says what to
# install and returns non-zero.
ensure_packages() {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "Please install: ${missing[*]} (or your system's equivalent)" >&2
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    echo "Installing ${missing[*]} ..." >&2
    if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; then
        "${sudo[@]}" apt-get update -q >/dev/null
        "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}
