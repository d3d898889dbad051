#!/bin/sh
# Writes deploy/.env, which compose reads, with fresh random secrets: the
# workbench's session key, the PostgreSQL superuser's and every service's
# database password, the key-encryption key, MinIO's credentials, Keycloak's
# administrator and database passwords, the staff accounts' first password
# (changed at first sign-in), and each service's broker key (`cargo xtask
# nats-keys`: the seeds for the services, the public keys for nats-server).
# And deploy/tls/: a CA, and signed by it the broker's certificate (services
# verify NATS against the CA) and the gateway's (onedoor.localhost, localhost).
# Once: an existing deploy/.env or certificate is kept (its secrets are in
# the volumes), and what a later version added is added to it. Both are
# git-ignored and readable by their owner only.
# Needs cargo (the repository's toolchain) and openssl.
set -eu
deploy=$(cd "$(dirname "$0")" && pwd)
env_file="$deploy/.env"
tls="$deploy/tls"
umask 077
kek() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
# Meets the realm's password policy (upper and lower case, digits, 12 or more).
staff_password() { echo "Od$(secret | cut -c1-20)9"; }
# Adds NAME=value unless deploy/.env has NAME already.
add() { grep -q "^$1=" "$env_file" || { echo "$1=$2" >> "$env_file"; echo "added $1"; }; }
if [ -e "$env_file" ]; then
    echo "$env_file exists; keeping it"
else
    nats_keys=$(cd "$deploy/.." && cargo xtask nats-keys)
    {
        echo "WORKBENCH_SESSION_KEY=$(secret)"
        echo "POSTGRES_PASSWORD=$(secret)"
        echo "MINIO_ROOT_USER=onedoor"
        echo "MINIO_ROOT_PASSWORD=$(secret)"
        sed -n 's/^CREATE ROLE \([a-z_]*\) LOGIN;$/\1/p' "$deploy/postgres/init.sql" | while read -r role; do
            echo "$(echo "$role" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD=$(secret)"
        done
        echo "$nats_keys"
    } > "$env_file"
    echo "wrote $env_file"
fi
# Secrets added since an existing deploy/.env was written.
add ONEDOOR_KEK "$(kek)"
add KEYCLOAK_ADMIN_PASSWORD "$(secret)"
add KEYCLOAK_DB_PASSWORD "$(secret)"
add ONEDOOR_STAFF_INITIAL_PASSWORD "$(staff_password)"

mkdir -p "$tls"
if [ ! -e "$tls/ca.pem" ]; then
    openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=OneDoor compose CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    echo "wrote $tls/ca.pem"
fi
# certificate NAME DNS-NAMES: NAME.pem and NAME.key, signed by the CA.
certificate() {
    [ -e "$tls/$1.pem" ] && return
    openssl req -newkey rsa:3072 -nodes -subj "/CN=$1" -keyout "$tls/$1.key" -out "$tls/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" > "$tls/$1.ext"
    openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 825 \
        -extfile "$tls/$1.ext" -out "$tls/$1.pem" 2>/dev/null
    rm -f "$tls/$1.csr" "$tls/$1.ext" "$tls/ca.srl"
    echo "wrote $tls/$1.pem"
}
certificate nats DNS:nats,DNS:localhost
certificate gateway DNS:onedoor.localhost,DNS:localhost
# The containers run as other users: the certificates and the servers' keys
# are readable to them; the CA's key stays the owner's.
chmod 755 "$tls"
chmod 644 "$tls/ca.pem" "$tls/nats.pem" "$tls/nats.key" "$tls/gateway.pem" "$tls/gateway.key"
