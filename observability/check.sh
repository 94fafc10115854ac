#!/usr/bin/env bash
# Static checks of the Prometheus part of observability/, with promtool
# (Debian: `apt-get install --no-install-recommends prometheus`):
#   - the Prometheus configs (Compose, local, Kubernetes) parse, and so do
#     the rule files they name;
#   - every rule file parses and its expressions are valid PromQL;
#   - the rule unit tests pass (recording rules give the expected values,
#     burn-rate alerts fire and stay quiet as they should).
# Runs every check, says which failed, and exits non-zero if any did.
# scripts/test runs it in its lint step.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
  echo "observability/check.sh: promtool not found (apt-get install prometheus)" >&2
  exit 1
fi

prom=observability/prometheus
failed=()

check() {
  echo "-- $*"
  if ! "$@"; then
    failed+=("$*")
  fi
}

echo "promtool: $(promtool --version 2>&1 | head -n1)"

# `check config` also checks the rule files the config names. The local
# config's file_sd file (data/targets.json) exists only while the launcher
# runs: promtool warns about a missing one and still passes.
check promtool check config "$prom/prometheus.yml"
check promtool check config "$prom/prometheus-local.yml"

# Kubernetes' config (deploy/k8s/observability/prometheus.yml) discovers
# pods through the Kubernetes API. Debian builds Prometheus without
# Kubernetes discovery, so its promtool rejects kubernetes_sd_configs:
# check a copy whose discovery is swapped for file_sd (everything else, the
# relabeling above all, unchanged) and whose rule_files point at the shared
# rules the ConfigMap carries. deploy/k8s/check.py checks the discovery.
k8s_tmp=$(mktemp -d)
if python3 - "$k8s_tmp" <<'PY'
import sys, pathlib, yaml
out = pathlib.Path(sys.argv[1])
config = yaml.safe_load(open("deploy/k8s/observability/prometheus.yml"))
for sc in config["scrape_configs"]:
    if sc.pop("kubernetes_sd_configs", None) is not None:
        sc["file_sd_configs"] = [{"files": [str(out / "targets.json")]}]
config["rule_files"] = [str(pathlib.Path("observability/prometheus/rules").resolve() / "*.yml")]
(out / "prometheus.yml").write_text(yaml.safe_dump(config))
(out / "targets.json").write_text("[]")
PY
then
  check promtool check config "$k8s_tmp/prometheus.yml"
else
  failed+=("deploy/k8s/observability/prometheus.yml could not be prepared for promtool")
fi
rm -rf "$k8s_tmp"

shopt -s nullglob
rules=("$prom"/rules/*.yml)
tests=("$prom"/tests/*.yml)
if [ ${#rules[@]} -eq 0 ] || [ ${#tests[@]} -eq 0 ]; then
  echo "no rule files or no rule tests under $prom" >&2
  failed+=("rule files and tests present")
else
  check promtool check rules "${rules[@]}"
  check promtool test rules "${tests[@]}"
fi

echo
if [ ${#failed[@]} -ne 0 ]; then
  echo "observability checks FAILED:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "observability checks passed: 3 Prometheus configs, ${#rules[@]} rule files, ${#tests[@]} rule test files"
