#!/usr/bin/env bash
# The Secrets the manifests reference by name, generated for a dev cluster (never
# committed). In production create them from your secret store instead (same names
# and keys; docs/deploy.md lists them).
#
#   infra/k8s/dev-secrets.sh [NAMESPACE]      # default haunted-dev
set -euo pipefail
ns=${1:-haunted-dev}
keys=$(mktemp -d)
trap 'rm -rf "$keys"' EXIT

kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/jwt-private.pem" 2>/dev/null
openssl pkey -in "$keys/jwt-private.pem" -pubout -out "$keys/jwt-public.pem"
password=$(openssl rand -hex 24)

kubectl -n "$ns" create secret generic haunted-jwt \
  --from-file=jwt-private.pem="$keys/jwt-private.pem" --from-file=jwt-public.pem="$keys/jwt-public.pem"
kubectl -n "$ns" create secret generic haunted-pii \
  --from-literal=HAUNTED_PII_ENCRYPTION_KEYS="k1:$(openssl rand -base64 32)" \
  --from-literal=HAUNTED_PII_LOOKUP_KEY="$(openssl rand -base64 32)"
kubectl -n "$ns" create secret generic haunted-postgres --from-literal=password="$password"
kubectl -n "$ns" create secret generic haunted-database \
  --from-literal=HAUNTED_DATABASE_URL="postgresql+asyncpg://haunted:${password}@haunted-postgres:5432/haunted"
echo "secrets created in $ns (haunted-stripe, haunted-openai, haunted-smtp, haunted-unleash are optional)"
