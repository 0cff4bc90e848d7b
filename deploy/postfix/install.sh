#!/bin/sh
# Configure Postfix in front of penpal-relay, from the files beside this script.
#
#   sudo deploy/postfix/install.sh pals.example.org
#
# Options (the defaults match the relay's shipped config.toml and docs/deploy.md):
#   --relay HOST:PORT     where the relay listens for mail      ([smtp] listen, 127.0.0.1:2525)
#   --policy HOST:PORT    the relay's recipient check           ([smtp] policy_listen, 127.0.0.1:10040)
#   --outbound HOST:PORT  where Postfix takes the relay's mail  ([delivery] smarthost, 127.0.0.1:10025)
#   --config-dir DIR      a Postfix configuration other than /etc/postfix
#   --no-start            only write the configuration
#
# It may be run again (after changing an option or upgrading the relay): every setting is
# replaced, nothing is added twice. At the end it checks the configuration and starts
# Postfix, or reloads it when it was running.
set -euf  # -f: no file name globbing of the values handled below

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
domain=""
relay=127.0.0.1:2525
policy=127.0.0.1:10040
outbound=127.0.0.1:10025
confdir=/etc/postfix
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --relay) relay=${2:?}; shift 2 ;;
    --policy) policy=${2:?}; shift 2 ;;
    --outbound) outbound=${2:?}; shift 2 ;;
    --config-dir) confdir=${2:?}; shift 2 ;;
    --no-start) start=no; shift ;;
    -h|--help) usage ;;
    -*) echo "install.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$domain" ] || usage; domain=$1; shift ;;
  esac
done
case "$domain" in
  ""|*[!A-Za-z0-9.-]*|.*|*.) echo "install.sh: give the program's domain, e.g. pals.example.org" >&2; exit 2 ;;
esac
command -v postconf >/dev/null || { echo "install.sh: Postfix is not installed (apt install postfix)" >&2; exit 1; }
[ -f "$confdir/main.cf" ] || { echo "install.sh: no main.cf in $confdir" >&2; exit 1; }

escaped=$(printf '%s' "$domain" | sed 's/\./\\\\./g')
# The shipped files name pals.example.org and the default ports; put the real ones in.
render() {
  sed -e "s|pals\\\\\\.example\\\\\\.org|$escaped|g" \
      -e "s|pals\\.example\\.org|$domain|g" \
      -e "s|/etc/postfix/|$confdir/|g" \
      -e "s|\\[127\\.0\\.0\\.1\\]:2525|[${relay%:*}]:${relay##*:}|g" \
      -e "s|inet:127\\.0\\.0\\.1:10040|inet:$policy|g" \
      -e "s|^127\\.0\\.0\\.1:10025 |$outbound |" \
      "$here/$1"
}

umask 022
render penpal-transport >"$confdir/penpal-transport"
render penpal-header-checks >"$confdir/penpal-header-checks"
render penpal-recipients >"$confdir/penpal-recipients"

# The program's domain is relayed to the relay, never delivered to local mailboxes: it must
# not be in mydestination (Debian's installer puts the "system mail name" there).
destinations=$(postconf -c "$confdir" -h mydestination | tr ',' ' ')
kept=""
for name in $destinations; do
  if [ "$(printf '%s' "$name" | tr 'A-Z' 'a-z')" = "$(printf '%s' "$domain" | tr 'A-Z' 'a-z')" ]; then
    echo "install.sh: $domain removed from mydestination: its mail goes to the relay"
  else
    kept="${kept:+$kept, }$name"
  fi
done
postconf -c "$confdir" -e "mydestination = $kept"
if postconf -c "$confdir" -x -h mydestination | tr ', ' '\n\n' | grep -qix -F "$domain"; then
  echo "install.sh: mydestination still names $domain (through a \$variable): remove it (postconf -n mydestination)" >&2
  exit 1
fi

render main.cf.settings | grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' |
  while IFS= read -r setting; do
    postconf -c "$confdir" -e "$setting"
  done

# master.cf: our block replaced (or added) between its marker lines.
master="$confdir/master.cf"
sed -i '/^# penpal-relay begin$/,/^# penpal-relay end$/d' "$master"
{
  echo "# penpal-relay begin"
  render master.cf.snippet
  echo "# penpal-relay end"
} >>"$master"

postfix -c "$confdir" check || {
  echo "install.sh: 'postfix check' found a problem; the mail log says which (journalctl -t postfix/postfix-script)" >&2
  exit 1
}
echo "install.sh: Postfix configured in $confdir for $domain (relay $relay, recipient check $policy, outgoing $outbound)"
[ "$start" = yes ] || exit 0
if [ "$confdir" = /etc/postfix ] && [ -d /run/systemd/system ]; then
  systemctl enable --quiet postfix
  systemctl restart postfix
elif postfix -c "$confdir" status >/dev/null 2>&1; then
  postfix -c "$confdir" reload
else
  postfix -c "$confdir" start
fi
echo "install.sh: Postfix is running"
