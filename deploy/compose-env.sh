#!/bin/sh
# Writes deploy/.env, which compose reads, with fresh random secrets: the
# development token secret, the workbench's session key, the PostgreSQL
# superuser's and every service's database password, MinIO's credentials.
# Once: an existing deploy/.env is kept (its secrets are in the volumes).
# The file is git-ignored and readable by its owner only.
set -eu
deploy=$(cd "$(dirname "$0")" && pwd)
env_file="$deploy/.env"
if [ -e "$env_file" ]; then
    echo "$env_file exists; keeping it"
    exit 0
fi
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
{
    echo "ONEDOOR_JWT_SECRET=$(secret)"
    echo "WORKBENCH_SESSION_KEY=$(secret)"
    echo "POSTGRES_PASSWORD=$(secret)"
    echo "MINIO_ROOT_USER=onedoor"
    echo "MINIO_ROOT_PASSWORD=$(secret)"
    sed -n 's/^CREATE ROLE \([a-z_]*\) LOGIN;$/\1/p' "$deploy/postgres/init.sql" | while read -r role; do
        echo "$(echo "$role" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD=$(secret)"
    done
} > "$env_file"
echo "wrote $env_file"
