#!/usr/bin/env bash
# Rolls out an overlay in the order a Helm pre-upgrade hook would give, with kubectl only:
#   1. everything but the Deployments (config, services, policies, data stores, the Jobs);
#   2. waits for the migrate and topics Jobs to complete (a failed migration stops here,
#      with the old pods still serving);
#   3. the Deployments, which roll (maxUnavailable 0 for the gateway).
#
#   infra/k8s/deploy.sh dev|prod [IMAGE_TAG]
set -euo pipefail
overlay=${1:?usage: deploy.sh dev|prod [IMAGE_TAG]}
tag=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT

if [ -n "$tag" ]; then
  kubectl kustomize "$here/overlays/$overlay" \
    | sed -E "s#(image: ghcr.io/haunted/haunted(-web)?):[^[:space:]]+#\1:$tag#" > "$rendered"
else
  kubectl kustomize "$here/overlays/$overlay" > "$rendered"
fi
namespace=$(awk '/^kind: Namespace/{found=1} found && /^  name:/{print $2; exit}' "$rendered")

# Jobs are immutable: the finished ones of the previous rollout go first.
kubectl -n "$namespace" delete job haunted-migrate haunted-topics --ignore-not-found
kubectl apply -f "$rendered" -l 'app.kubernetes.io/component notin (gateway,worker,web)'
kubectl -n "$namespace" wait --for=condition=complete --timeout=15m job/haunted-migrate job/haunted-topics
kubectl apply -f "$rendered"
kubectl -n "$namespace" rollout status deployment/haunted-gateway --timeout=10m
