#!/bin/sh
# Entrypoint of the locally built PostgreSQL image (scripts/container-postgres.sh bakes it in as
# /usr/local/bin/docker-entrypoint.sh). It honours the part of the official `postgres` image's
# interface that testcontainers' Postgres module and taskbench rely on:
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default: the user),
#     POSTGRES_HOST_AUTH_METHOD (default scram-sha-256 with a password, else trust), PGDATA;
#   - arguments starting with "-" are the server's (`-c fsync=off` ...);
#   - on first start it initialises the cluster with a temporary server whose log goes to stdout,
#     then runs the real server in the foreground, logging to stderr: each prints "database system
#     is ready to accept connections", which is what the module waits for on both streams;
#   - it listens on 5432 on every interface of the container.
set -eu

PGBIN=/usr/lib/postgresql/15/bin
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
password="${POSTGRES_PASSWORD:-}"
auth="${POSTGRES_HOST_AUTH_METHOD:-}"

if [ "${1:-}" = "" ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != "postgres" ]; then
    exec "$@"
fi
shift

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$password" ] && [ -z "$auth" ]; then
        echo "error: POSTGRES_PASSWORD is not set (set it, or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    [ -n "$auth" ] || auth=scram-sha-256
    # Like the official image: a password only when one is given.
    pwfile=$(mktemp)
    pwopt=
    if [ -n "$password" ]; then
        printf '%s\n' "$password" >"$pwfile"
        chown postgres "$pwfile" 2>/dev/null || true
        pwopt="--pwfile=$pwfile"
    fi
    # shellcheck disable=SC2086 # $pwopt is one word or none
    as_postgres "$PGBIN/initdb" --username="$user" $pwopt --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$auth" -D "$PGDATA"
    rm -f "$pwfile"
    {
        echo "listen_addresses = '*'"
        echo "port = 5432"
    } >>"$PGDATA/postgresql.conf"
    echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"

    # The temporary server: unix socket only, its log on stdout.
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$db" != "postgres" ]; then
        echo 'CREATE DATABASE :"db";' | as_postgres "$PGBIN/psql" -v ON_ERROR_STOP=1 --username="$user" \
            --dbname=postgres --set db="$db"
    fi
    if [ -n "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null)" ]; then
        echo "error: /docker-entrypoint-initdb.d is not supported by this image" >&2
        exit 1
    fi
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
fi

if [ "$(id -u)" = 0 ]; then
    # setpriv execs (runuser would stay as PID 1, which ignores the stop signal): the server is
    # PID 1 and gets SIGINT, a fast shutdown, from `docker stop`.
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$PGBIN/postgres" -D "$PGDATA" "$@"
fi
exec "$PGBIN/postgres" -D "$PGDATA" "$@"
