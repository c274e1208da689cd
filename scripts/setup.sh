#!/usr/bin/env bash
# Idempotent set-up shared by scripts/demo and scripts/test:
# Debian ffmpeg + espeak-ng when missing, a venv in .venv, and `pip install -e .[EXTRAS]`
# (redone only for a pyproject.toml or a set of extras not installed before). Usage: source scripts/setup.sh EXTRAS
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
# The tests also run node tools (asl-validator on the state machine definition, the CDK CLI).
[[ ",$1," != *,dev,* ]] || command -v npm >/dev/null || missing+=(nodejs npm)
# ... and drive Debian's chromium through Playwright (its own browser download cannot be used).
[[ ",$1," != *,dev,* ]] || [ -x /usr/bin/chromium ] || missing+=(chromium)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]} (Debian packages)" >&2
  # Another apt (unattended upgrades on a fresh machine) may hold the lock: wait for it, up to 10 minutes.
  wait_lock=(-o DPkg::Lock::Timeout=600)
  $sudo apt-get "${wait_lock[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-$(cat pyproject.toml requirements-nodeps.txt | sha256sum | cut -c1-16)-${1//,/-}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages [$1] into .venv (first run: a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$1]"
  [[ ",$1," != *,ml,* ]] || .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
  touch "$stamp"
fi
if [[ ",$1," == *,dev,* ]]; then
  # SAM CLI pins its own boto3/click: it lives in a venv of its own (used by the tests' `sam validate`).
  if [ ! -x .venv-sam/bin/sam ]; then
    echo "setup: installing the SAM CLI into .venv-sam" >&2
    python3 -m venv .venv-sam
    .venv-sam/bin/python -m pip install -q aws-sam-cli==1.170.0
  fi
  node_stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
  if [ ! -f "$node_stamp" ]; then
    echo "setup: installing node tools (package-lock.json)" >&2
    npm ci --no-audit --no-fund --silent >/dev/null
    touch "$node_stamp"
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
