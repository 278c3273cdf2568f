#!/bin/bash
# A private PostgreSQL and a private MariaDB in a directory of their own: initialized there,
# listening only on a socket in that directory (no TCP), started and stopped by pidfile.
# Touches nothing else on the host (not the Debian clusters, not /run/postgresql or /run/mysqld).
#   scripts/backends/databases.sh up DIR [PG_PORT]   prints OPD_PG_HOST=… OPD_PG_PORT=… OPD_MYSQL_SOCKET=…
#   scripts/backends/databases.sh down DIR           stops exactly the servers it started (pidfiles), removes DIR
# PostgreSQL runs as the postgres user: local peer auth for postgres, scram-sha-256 for every
# other role. MariaDB runs as mysql: root@localhost authenticates by unix_socket.
# The data is disposable: PostgreSQL runs without fsync (DROP DATABASE waits for a checkpoint).
set -euo pipefail
cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || { echo "usage: $0 up|down DIR [PG_PORT]" >&2; exit 64; }
PORT=${3:-55432}
# OPD_PG_LISTEN=127.0.0.1 makes PostgreSQL also listen on TCP there (e2e: inside the test's own
# network namespace, where the example's port check then sees the document's own database)

pgbin() {
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$b" ] && [ -x "$b/initdb" ] || { echo "PostgreSQL server missing: apt-get install postgresql" >&2; exit 69; }
  echo "$b"
}

alive() { [ -f "$1" ] && kill -0 "$(head -1 "$1")" 2>/dev/null; }

case "$cmd" in
  up)
    command -v mariadbd >/dev/null || { echo "MariaDB server missing: apt-get install mariadb-server" >&2; exit 69; }
    command -v psql >/dev/null || { echo "psql missing: apt-get install postgresql-client" >&2; exit 69; }
    B=$(pgbin)
    mkdir -p "$D"
    chmod 755 "$D"   # the servers run as postgres / mysql and must traverse DIR
    D=$(cd "$D" && pwd)
    for u in postgres mysql; do
      runuser -u "$u" -- test -x "$D" || { echo "$D is not reachable by the $u user: its parent directories need o+x" >&2; exit 1; }
    done
    # --- PostgreSQL
    install -d -o postgres -g postgres -m 700 "$D/pg"
    install -d -o postgres -g postgres -m 755 "$D/pg/sock"
    if [ ! -f "$D/pg/data/PG_VERSION" ]; then
      (cd / && runuser -u postgres -- "$B/initdb" -D "$D/pg/data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=reject >"$D/pg/initdb.log" 2>&1) || { cat "$D/pg/initdb.log" >&2; exit 1; }
      printf 'local all postgres peer\nlocal all all scram-sha-256\n' >"$D/pg/data/pg_hba.conf"
    fi
    if ! alive "$D/pg/data/postmaster.pid"; then
      (cd / && runuser -u postgres -- "$B/pg_ctl" -D "$D/pg/data" -l "$D/pg/server.log" -w -t 60 \
        -o "-k $D/pg/sock -p $PORT -c listen_addresses='${OPD_PG_LISTEN:-}' -c fsync=off -c full_page_writes=off -c synchronous_commit=off" start >/dev/null) || { tail -20 "$D/pg/server.log" >&2; exit 1; }
    fi
    # --- MariaDB
    install -d -o mysql -g mysql -m 750 "$D/my"
    install -d -o mysql -g mysql -m 755 "$D/my/run"
    if [ ! -d "$D/my/data/mysql" ]; then
      mariadb-install-db --no-defaults --user=mysql --datadir="$D/my/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$D/my/install.log" 2>&1 || { cat "$D/my/install.log" >&2; exit 1; }
    fi
    if ! alive "$D/my/run/mysqld.pid"; then
      rm -f "$D/my/run/mysqld.sock"
      setsid mariadbd --no-defaults --user=mysql --datadir="$D/my/data" --socket="$D/my/run/mysqld.sock" \
        --pid-file="$D/my/run/mysqld.pid" --skip-networking --log-error="$D/my/error.log" \
        </dev/null >/dev/null 2>&1 &
      for _ in $(seq 1 300); do
        [ -S "$D/my/run/mysqld.sock" ] && alive "$D/my/run/mysqld.pid" && break
        sleep 0.1
      done
      [ -S "$D/my/run/mysqld.sock" ] || { tail -20 "$D/my/error.log" >&2; exit 1; }
    fi
    echo "OPD_PG_HOST=$D/pg/sock"
    echo "OPD_PG_PORT=$PORT"
    echo "OPD_MYSQL_SOCKET=$D/my/run/mysqld.sock"
    ;;
  down)
    [ -d "$D" ] || exit 0
    pids=()
    for f in "$D/pg/data/postmaster.pid" "$D/my/run/mysqld.pid"; do
      if alive "$f"; then
        p=$(head -1 "$f"); pids+=("$p")
        # SIGINT: PostgreSQL's fast shutdown; SIGTERM: MariaDB's normal shutdown
        case "$f" in *postmaster.pid) kill -INT "$p" ;; *) kill -TERM "$p" ;; esac
      fi
    done
    for _ in $(seq 1 300); do
      left=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
      [ $left = 0 ] && break; sleep 0.1
    done
    rm -rf "$D"
    ;;
  *) echo "usage: $0 up|down DIR [PG_PORT]" >&2; exit 64 ;;
esac
