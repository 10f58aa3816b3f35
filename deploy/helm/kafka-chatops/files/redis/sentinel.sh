#!/bin/sh
# This pod's Sentinel: it monitors the master the other Sentinels know, else pod 0 (a first start).
# Its config is rewritten by Sentinel itself; it is made afresh at each start (an emptyDir), and the
# other Sentinels replace the old entry of this address when it comes back with a new run id.
. "$(dirname "$0")/common.sh"
: "${QUORUM:=2}" "${DOWN_AFTER_MILLISECONDS:=5000}" "${FAILOVER_TIMEOUT:=60000}"

if master="$(known_master)"; then
    log "the Sentinels know the master: $master"
else
    master="${FIRST_POD_ADDRESS%:*} ${FIRST_POD_ADDRESS##*:}"
    log "no Sentinel knows a master: monitoring pod 0 ($master)"
fi

# A Sentinel refuses to start on a master name it cannot resolve: give a just-created pod's DNS
# record (published before the pod is ready) a moment to appear rather than crash-loop.
set -- $master
waited=0
until getent hosts "$1" >/dev/null 2>&1 || [ "$waited" -ge 30 ]; do
    sleep 1
    waited=$((waited + 1))
done

conf="$CONF_DIR/sentinel.conf"
umask 077
cat > "$conf" <<CONF
port $SENTINEL_PORT
bind $BIND
protected-mode no
dir $CONF_DIR
requirepass "$PASSWORD"
sentinel sentinel-pass "$PASSWORD"
# Pod IPs change when a pod moves: the Sentinels name every node by its stable host name.
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $POD_HOST
sentinel announce-port $SENTINEL_PORT
sentinel monitor $MASTER_NAME $1 $2 $QUORUM
sentinel auth-pass $MASTER_NAME "$PASSWORD"
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MILLISECONDS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT
sentinel parallel-syncs $MASTER_NAME 1
CONF
exec redis-server "$conf" --sentinel
