#!/usr/bin/env sh
# Install the Debian packages the test suite talks to (listed one per line in
# system-packages.txt: a browser for the admin app, slapd for LDAP, xmlsec for
# SAML) when they are missing. Needs apt-get and root; otherwise it says what is
# missing and the tests that need it skip with that reason.
set -u
list="$(dirname "$0")/../system-packages.txt"
[ -f "$list" ] || exit 0
missing=""
for pkg in $(grep -v '^#' "$list" | sed 's/#.*//'); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q --no-install-recommends $missing >/dev/null
  } || echo "could not install:$missing (tests that need them will skip)"
else
  echo "missing system packages (tests that need them will skip):$missing"
fi
exit 0
