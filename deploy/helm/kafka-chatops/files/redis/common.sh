# Sourced by redis.sh and sentinel.sh. Everything about where this pod and its peers are comes from
# the environment (the StatefulSet sets it from the pod's name; a test sets 127.0.0.1 and free ports):
#   POD_HOST            this pod's host name as the others reach it (its FQDN in the headless Service)
#   REDIS_PORT          this pod's Redis port            SENTINEL_PORT  this pod's Sentinel port
#   SENTINEL_ADDRESSES  every pod's Sentinel, "host:port host:port ..."
#   FIRST_POD_ADDRESS   pod 0's Redis, "host:port": the master when no Sentinel knows one
#   MASTER_NAME         the name the Sentinels monitor the master under
#   REDIS_PASSWORD_FILE the password of the Redis servers and of the Sentinels (one Secret key)
#   CONF_DIR            a writable directory for the generated config (not the data volume)
#   BIND                addresses to listen on (default: every IPv4 and, if any, IPv6 address)
set -eu

: "${POD_HOST:?}" "${REDIS_PORT:?}" "${SENTINEL_PORT:?}" "${SENTINEL_ADDRESSES:?}" "${FIRST_POD_ADDRESS:?}"
: "${MASTER_NAME:?}" "${REDIS_PASSWORD_FILE:?}" "${CONF_DIR:?}"
BIND="${BIND:-* -::*}"

# redis-cli reads the password from REDISCLI_AUTH: it never shows on a command line (ps).
REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")"
export REDISCLI_AUTH
PASSWORD="$REDISCLI_AUTH"
# The configs quote it ("..."), where Redis reads \ and " as escapes: refuse them rather than start
# servers whose password is not the Secret's.
case "$PASSWORD" in
    "" | *'"'* | *'\'*)
        echo "the password in $REDIS_PASSWORD_FILE is empty or has \" or \\: give one without (e.g. openssl rand -base64 24)" >&2
        exit 2 ;;
esac

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >&2; }

# "host port" of the master the first answering Sentinel knows; fails when none answers or knows one.
known_master() {
    for address in $SENTINEL_ADDRESSES; do
        reply="$(timeout 5 redis-cli --no-auth-warning --raw -h "${address%:*}" -p "${address##*:}" \
            SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null)" || continue
        # shellcheck disable=SC2086  # two lines: host, then port (nothing when the name is unknown)
        set -- $reply
        if [ "$#" -eq 2 ] && [ "$2" -gt 0 ] 2>/dev/null; then
            echo "$1 $2"
            return 0
        fi
    done
    return 1
}
