#!/usr/bin/env bash
# What the integration tests (tests/integration, `make test-integration`) need beyond pip:
# Debian's headless Chromium and its driver (the MLflow UI in a browser) and PostgreSQL (the shared
# tracking server test runs a throwaway cluster on 127.0.0.1). Installed with apt-get when missing.
set -euo pipefail
missing=()
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || missing+=(chromium chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
