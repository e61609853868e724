#!/usr/bin/env bash
# Strata on two local kind clusters, for users whose machine can pull images (kind's node
# image, the Prometheus Operator, Grafana) — Strata's own images come from `make images`:
#
#   make images && k8s/kind.sh          creates kind clusters strata-1 and strata-2, loads the
#                                       Strata images into both, installs the Prometheus
#                                       Operator, and applies overlays/cluster-1 and cluster-2
#   k8s/kind.sh delete                  deletes both clusters
#
# Needs kind and kubectl. The objstore Secret of the overlays is an example: set
# STRATA_OBJSTORE_FILE to your objstore.yml (S3, GCS, Azure) to create the real one in both
# clusters. The remote tier's TLS Secrets are made here with a throwaway CA (openssl); the
# Ingress of cluster-2 needs ingress-nginx and a DNS name the central cluster resolves, so on
# kind the global querier warns that the remote tier has no endpoint until you wire that up.
set -euo pipefail
cd "$(dirname "$0")/.."

clusters=(strata-1 strata-2)
operator_version="${PROMETHEUS_OPERATOR_VERSION:-v0.75.0}"
operator_bundle="https://github.com/prometheus-operator/prometheus-operator/releases/download/$operator_version/bundle.yaml"

for tool in kind kubectl docker; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done

if [ "${1:-}" = delete ]; then
  for cluster in "${clusters[@]}"; do kind delete cluster --name "$cluster"; done
  exit 0
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
images=()
while read -r name crate _; do
  case "$name" in ''|'#'*) continue ;; esac
  [ -f "$crate/Cargo.toml" ] || continue
  image="strata/$name:$version"
  docker image inspect "$image" >/dev/null 2>&1 || { echo "$image is missing: run make images" >&2; exit 1; }
  images+=("$image")
done < docker/components

tls=$(mktemp -d)
trap 'rm -rf "$tls"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=strata-kind-ca" \
  -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
for name in sidecar.cluster-2.example.com strata-query-remote; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
    -keyout "$tls/$name.key" -out "$tls/$name.csr" 2>/dev/null
  openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 30 -copy_extensions copy -out "$tls/$name.crt" 2>/dev/null
done

for i in "${!clusters[@]}"; do
  cluster=${clusters[$i]}
  overlay="k8s/overlays/cluster-$((i + 1))"
  context="kind-$cluster"
  kind get clusters 2>/dev/null | grep -qx "$cluster" || kind create cluster --name "$cluster"
  for image in "${images[@]}"; do kind load docker-image --name "$cluster" "$image"; done
  kubectl --context "$context" apply --server-side -f "$operator_bundle" >/dev/null
  kubectl --context "$context" -n default wait --for=condition=Available deployment/prometheus-operator --timeout=180s
  kubectl --context "$context" create namespace strata --dry-run=client -o yaml | kubectl --context "$context" apply -f -
  if [ "$i" = 0 ]; then
    kubectl --context "$context" -n strata create secret generic strata-remote-client-tls \
      --from-file=tls.crt="$tls/strata-query-remote.crt" --from-file=tls.key="$tls/strata-query-remote.key" \
      --from-file=ca.crt="$tls/ca.crt" --dry-run=client -o yaml | kubectl --context "$context" apply -f -
  else
    kubectl --context "$context" -n strata create secret tls strata-sidecar-tls \
      --cert="$tls/sidecar.cluster-2.example.com.crt" --key="$tls/sidecar.cluster-2.example.com.key" \
      --dry-run=client -o yaml | kubectl --context "$context" apply -f -
    kubectl --context "$context" -n strata create secret generic strata-querier-client-ca \
      --from-file=ca.crt="$tls/ca.crt" --dry-run=client -o yaml | kubectl --context "$context" apply -f -
  fi
  kubectl --context "$context" apply -k "$overlay"
  if [ -n "${STRATA_OBJSTORE_FILE:-}" ]; then
    kubectl --context "$context" -n strata create secret generic strata-objstore \
      --from-file=objstore.yml="$STRATA_OBJSTORE_FILE" --dry-run=client -o yaml | kubectl --context "$context" apply -f -
  fi
  echo "== $cluster: $overlay applied (kubectl --context $context -n strata get pods)"
done
echo "== Grafana: kubectl --context kind-strata-1 -n strata port-forward svc/grafana 3000"
echo "== querier: kubectl --context kind-strata-1 -n strata port-forward svc/strata-query 9090"
