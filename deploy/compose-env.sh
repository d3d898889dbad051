#!/bin/sh
# Writes deploy/.env, which compose reads, with fresh random secrets: the
# development token secret, the workbench's session key, the PostgreSQL
# superuser's and every service's database password, the key-encryption key, MinIO's credentials,
# and each service's broker key (`cargo xtask nats-keys`: the seeds for the
# services, the public keys for nats-server). And deploy/tls/: a CA and the
# broker's certificate signed by it (services verify NATS against the CA).
# Once: an existing deploy/.env or deploy/tls is kept (its secrets are in the
# volumes). Both are git-ignored and readable by their owner only.
# Needs cargo (the repository's toolchain) and openssl.
set -eu
deploy=$(cd "$(dirname "$0")" && pwd)
env_file="$deploy/.env"
tls="$deploy/tls"
umask 077
kek() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
if [ -e "$env_file" ]; then
    echo "$env_file exists; keeping it"
    # Secrets added since it was written.
    grep -q '^ONEDOOR_KEK=' "$env_file" || { echo "ONEDOOR_KEK=$(kek)" >> "$env_file"; echo "added ONEDOOR_KEK"; }
else
    secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
    nats_keys=$(cd "$deploy/.." && cargo xtask nats-keys)
    {
        echo "ONEDOOR_JWT_SECRET=$(secret)"
        echo "ONEDOOR_KEK=$(kek)"
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
if [ -e "$tls/ca.pem" ]; then
    echo "$tls exists; keeping it"
    exit 0
fi
mkdir -p "$tls"
openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=OneDoor compose CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=nats" -keyout "$tls/nats.key" -out "$tls/nats.csr" 2>/dev/null
printf 'subjectAltName=DNS:nats,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$tls/nats.ext"
openssl x509 -req -in "$tls/nats.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 825 \
    -extfile "$tls/nats.ext" -out "$tls/nats.pem" 2>/dev/null
rm -f "$tls/nats.csr" "$tls/nats.ext" "$tls/ca.srl"
# The containers run as other users: the certificates and the broker's key are
# readable to them; the CA's key stays the owner's.
chmod 755 "$tls"
chmod 644 "$tls/ca.pem" "$tls/nats.pem" "$tls/nats.key"
echo "wrote $tls (CA and the broker's certificate)"
