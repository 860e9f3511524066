#!/usr/bin/env bash
# The test command leaves the machine alone: a record of the places a careless test or
# set-up step would change (/etc, /root, /usr/local, /opt, /var/lib, the firewall, IP
# forwarding), taken after the packages are installed and compared after every test ran.
#   scripts/host-guard.sh record FILE     write the record
#   scripts/host-guard.sh compare FILE    exit 1, listing each difference, if anything changed
# Files are compared by type, size, mode and modification time; folders by type and mode
# (a file made and removed again changes only its folder's time).
set -euo pipefail
record() {
  { find /etc /root /usr/local /opt /var/lib -xdev \( -type d -printf '%p\t%y\t-\t%m\t-\n' \) \
         -o \( -printf '%p\t%y\t%s\t%m\t%T@\n' \) 2>/dev/null || true; } | LC_ALL=C sort
  {
    echo "sysctl net.ipv4.ip_forward=$(sysctl -n net.ipv4.ip_forward 2>/dev/null)"
    if command -v iptables-save >/dev/null; then iptables-save 2>/dev/null | { grep -v '^#' || true; } | sed 's/\[[0-9:]*\]$//;s/^/iptables /'; fi
  }
}
case "${1:-}" in
  record) record > "${2:?FILE}" ;;
  compare)
    if ! diff <(cat "${2:?FILE}") <(record) > "$2.diff"; then
      echo "host-guard: the machine changed outside the checkout (< before, > after):" >&2
      head -50 "$2.diff" >&2
      exit 1
    fi
    echo "host-guard: /etc, /root, /usr/local, /opt, /var/lib, iptables and ip_forward unchanged" ;;
  *) echo "usage: scripts/host-guard.sh record|compare FILE" >&2; exit 2 ;;
esac
