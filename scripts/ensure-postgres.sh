#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the PostgreSQL tests.
# Uses the local server when it is already up; starts the Debian cluster when it is installed
# but stopped. Never fails the caller: without PostgreSQL those tests print SKIPPED.
set -u

ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -h 127.0.0.1 -p 5432 -q
    else
        (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
    fi
}

if ready; then
    echo "ensure-postgres: PostgreSQL answers on 127.0.0.1:5432"
    exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "ensure-postgres: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>&1 || true
    for _ in $(seq 1 30); do
        ready && { echo "ensure-postgres: up"; exit 0; }
        sleep 1
    done
fi
echo "ensure-postgres: no PostgreSQL on 127.0.0.1:5432; PostgreSQL tests will be SKIPPED"
exit 0
