#!/bin/sh
# Configure a container's Postfix from deploy/postfix/ (run by postfix.Containerfile at build
# time): the same snippets as on a host, with what a container network changes.
#   postfix-configure.sh SNIPPETS_FOLDER
# Environment: DOMAIN (pals.example.org), MAIL_NAME (mx.<DOMAIN>), RELAY_HOST (relay: the
# relay's service name), RELAY_NETWORK (the network the relay sends from), POSTFIX_CONFIG
# (/etc/postfix).
set -eu
snippets=$1
domain=${DOMAIN:-pals.example.org}
mail_name=${MAIL_NAME:-mx.$domain}
relay_host=${RELAY_HOST:-relay}
relay_network=${RELAY_NETWORK:-172.29.25.0/24}
config=${POSTFIX_CONFIG:-/etc/postfix}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$snippets/main.cf.snippet" "$snippets/master.cf.snippet" "$snippets/transport" "$work/"
cd "$work"

# The program's domain; on a host the snippets say pals.example.org.
sed -i "s/pals\.example\.org/$domain/g" main.cf.snippet transport
# The relay is another container: [relay]:2525, not [127.0.0.1]:2525.
sed -i "s/\[127\.0\.0\.1\]:2525/[$relay_host]:2525/" transport
# The listener the relay sends through: on the container network, open to it alone (not
# published), instead of loopback.
sed -i -E -e 's/^127\.0\.0\.1:10025([[:space:]])/10025\1/' \
    -e "s#mynetworks=127\.0\.0\.0/8#mynetworks=$relay_network#" master.cf.snippet
grep -q "\[$relay_host\]:2525" transport || { echo "transport: no [127.0.0.1]:2525 to replace" >&2; exit 1; }
grep -q '^10025[[:space:]]' master.cf.snippet || { echo "master.cf.snippet: no 127.0.0.1:10025 listener" >&2; exit 1; }

cat main.cf.snippet >> "$config/main.cf"
cat master.cf.snippet >> "$config/master.cf"
install -m 644 transport "$config/transport"
# The snippet names /etc/postfix/transport; elsewhere (a test's scratch folder) point at ours.
postconf -c "$config" -e "transport_maps = hash:$config/transport"
postmap "hash:$config/transport"
postconf -c "$config" -e \
    "myhostname = $mail_name" \
    "inet_interfaces = all" \
    "inet_protocols = ipv4" \
    "maillog_file = /dev/stdout" \
    "smtp_host_lookup = dns, native"
# Logging to standard output needs postlogd; chroot would need copies of resolv.conf and
# hosts inside the queue folder to find the relay's container by name.
postconf -c "$config" -M "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"
postconf -c "$config" -F '*/*/chroot = n'
