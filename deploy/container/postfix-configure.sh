#!/bin/sh
# Configure the Postfix container of compose.yaml (run by postfix.Containerfile at build
# time): deploy/postfix/install.sh, as on a host, pointed at the relay's container, then what
# a container needs beyond it.
#   postfix-configure.sh POSTFIX_FILES_FOLDER
# Environment: DOMAIN (pals.example.org), MAIL_NAME (mx.<DOMAIN>), RELAY_HOST (relay: the
# relay's service name), RELAY_NETWORK (the network the relay sends from), POSTFIX_CONFIG
# (/etc/postfix).
set -eu
files=$1
domain=${DOMAIN:-pals.example.org}
mail_name=${MAIL_NAME:-mx.$domain}
relay_host=${RELAY_HOST:-relay}
relay_network=${RELAY_NETWORK:-172.29.25.0/24}
config=${POSTFIX_CONFIG:-/etc/postfix}

# Letters go to the relay's container ([smtp] listen = "0.0.0.0:2525" there), the recipient
# check is asked there too ([smtp] policy_listen = "0.0.0.0:10040"), and the listener the
# relay sends through ([delivery] smarthost = "postfix:10025") is on the container network
# instead of loopback; it is not published.
sh "$files/install.sh" "$domain" --relay "$relay_host:2525" --policy "$relay_host:10040" \
    --outbound 10025 --config-dir "$config" --no-start
# That listener is open to the container network only (on a host: 127.0.0.0/8).
postconf -c "$config" -P "10025/inet/mynetworks=$relay_network"

postconf -c "$config" -e \
    "myhostname = $mail_name" \
    "inet_interfaces = all" \
    "inet_protocols = ipv4" \
    "maillog_file = /dev/stdout" \
    "maillog_file_prefixes = /var, /dev/stdout" \
    "smtp_host_lookup = dns, native"
# Logging to standard output needs postlogd; a chroot would need copies of resolv.conf and
# hosts inside the queue folder to find the relay's container by name.
postconf -c "$config" -M "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"
postconf -c "$config" -F '*/*/chroot = n'
postfix -c "$config" check
