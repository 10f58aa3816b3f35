#!/bin/sh
# This pod's redis-server. If a Sentinel knows the master, start as its replica (or as the master, if
# that is this pod: it restarted before the Sentinels failed it over). If none does (a first start, or
# every Sentinel down), pod 0 starts as the master and the others as its replicas: never a second master.
. "$(dirname "$0")/common.sh"
: "${DATA_DIR:?}"

if master="$(known_master)"; then
    log "the Sentinels know the master: $master"
else
    master="${FIRST_POD_ADDRESS%:*} ${FIRST_POD_ADDRESS##*:}"
    log "no Sentinel knows a master: pod 0 ($master) is the master"
fi
set -- $master

conf="$CONF_DIR/redis.conf"
umask 077  # the config holds the password
cat > "$conf" <<CONF
port $REDIS_PORT
bind $BIND
protected-mode no
dir $DATA_DIR
requirepass "$PASSWORD"
masterauth "$PASSWORD"
# The Sentinels and the other pods reach this one by its stable host name, not its pod IP.
replica-announce-ip $POD_HOST
replica-announce-port $REDIS_PORT
# Every acknowledged write is on disk before the reply: a restarted master loses nothing it confirmed.
appendonly yes
appendfsync always
# A master with no replica in touch for 10 s refuses writes: an old master cut off from the others
# takes no writes for long, which a failover would throw away. The bot's WAIT (REDIS_WAIT_REPLICAS=1)
# is what makes each write it acts on be on a replica; this only narrows the window (docs/redis.md).
min-replicas-to-write 1
min-replicas-max-lag 10
CONF
if [ "$1" = "$POD_HOST" ] && [ "$2" = "$REDIS_PORT" ]; then
    log "starting as the master"
else
    log "starting as a replica of $1:$2"
    echo "replicaof $1 $2" >> "$conf"
fi
exec redis-server "$conf"
