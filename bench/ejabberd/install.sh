#!/bin/sh
# Installs Debian's ejabberd and its PostgreSQL driver for the benchmark's IM-server
# baseline (issue 7). Parley does not need it, nor do its tests. Run as root; running it
# again once installed does nothing.
#
# The package's own service is kept from starting: its stock config listens on every
# interface, and the benchmark starts its own instance (bench/ejabberd/server.py) on
# loopback with a config of its own in a temporary folder.
set -eu

PACKAGES="ejabberd erlang-p1-pgsql"

installed() {
    for package in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || return 1
    done
}

if installed; then
    echo "ejabberd already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (apt-get install)" >&2
    exit 1
fi

# policy-rc.d answering 101 is Debian's way to tell a package's maintainer scripts not to
# start services. Only a missing one is put in place, and it is removed again on exit.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    trap 'rm -f "$POLICY"' EXIT INT TERM
    printf '#!/bin/sh\nexit 101\n' > "$POLICY"
    chmod 755 "$POLICY"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $PACKAGES

# Under systemd the unit would still start at the next boot.
if [ -d /run/systemd/system ]; then
    systemctl disable --now ejabberd.service || true
fi
echo "ejabberd installed: $(dpkg-query -W -f='${Version}' ejabberd)"
