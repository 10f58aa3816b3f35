#!/bin/sh
# preStop of the redis container. If this pod is the master, ask another pod's Sentinel to fail over
# now (SENTINEL FAILOVER) and wait until the Sentinels name another master, so a rolling update or a
# drained node costs a hand-over, not down-after-milliseconds of no master. A replica stops at once.
. "$(dirname "$0")/common.sh"
: "${HANDOVER_TIMEOUT:=20}"

role="$(timeout 5 redis-cli --no-auth-warning --raw -p "$REDIS_PORT" ROLE 2>/dev/null | head -n 1)" || exit 0
[ "$role" = "master" ] || exit 0

# Asked again each second: a Sentinel refuses (NOGOODSLAVE) until it has seen a replica in sync
# recently, and one that answers INPROG is already at it.
waited=0
while [ "$waited" -lt "$HANDOVER_TIMEOUT" ]; do
    if master="$(known_master)" && [ "$master" != "$POD_HOST $REDIS_PORT" ]; then
        log "handed over to $master"
        exit 0
    fi
    for address in $SENTINEL_ADDRESSES; do
        # Not this pod's Sentinel: it is being stopped with the pod.
        [ "$address" = "$POD_HOST:$SENTINEL_PORT" ] && continue
        reply="$(timeout 5 redis-cli --no-auth-warning --raw -h "${address%:*}" -p "${address##*:}" \
            SENTINEL failover "$MASTER_NAME" 2>&1)" || true
        log "asked the Sentinel at $address to fail over: $reply"
        [ "$reply" = "OK" ] && break
    done
    sleep 1
    waited=$((waited + 1))
done
log "no hand-over within ${HANDOVER_TIMEOUT}s: stopping as the master"
