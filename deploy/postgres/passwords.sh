#!/bin/sh
# Sets the password of each service's database owner (the roles of
# 10-onedoor.sql) from <SERVICE>_DB_PASSWORD in the environment: compose
# passes them from deploy/.env, which deploy/compose-env.sh generates. No
# password is written in the repository.
set -eu
roles=$(sed -n 's/^CREATE ROLE \([a-z_]*\) LOGIN;$/\1/p' /docker-entrypoint-initdb.d/10-onedoor.sql)
for role in $roles; do
    variable="$(echo "$role" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password=$(printenv "$variable") || { echo "$variable is not set: run deploy/compose-env.sh" >&2; exit 1; }
    echo "ALTER ROLE $role PASSWORD :'password';" |
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$password"
done
