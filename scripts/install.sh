#!/usr/bin/env bash
# Installs corral and what it needs into ./.venv (idempotent; quick when already done).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "corral needs Python 3.11 or newer ($PY is $("$PY" --version 2>&1))" >&2; exit 1
fi
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
  # Debian splits venv/ensurepip out of python3.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "install python3-venv (sudo apt-get install python3-venv) and retry" >&2; exit 1
  fi
fi
missing=()
while read -r pkg cmd; do
  case "$pkg" in ''|'#'*) continue ;; esac
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/debian-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "corral needs these Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2; exit 1
  fi
fi
# The unprivileged user pods run as when their securityContext names none
# (corral agent --pod-user, default corral-pod). Only root can create it; an
# agent that is not root runs pods as itself and needs none.
if ! getent passwd corral-pod >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin corral-pod
  else
    echo "note: no user corral-pod; an agent run as root needs it (sudo $0)" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.corral-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
# pymesos, a real Mesos framework library, for the offers tests. It needs
# http-parser, whose C extension no longer builds: pymesos goes in without its
# dependencies (six and addict are in the test extras) and http-parser as its
# pure-Python modules only (its http.py falls back to pyparser.py by itself).
if ! .venv/bin/python -c 'import pymesos, http_parser.http' 2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps "pymesos==0.3.15"
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: "http-parser==0.9.0" -d "$tmp"
  tar xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$site/http_parser"
  for m in __init__ http pyparser reader util _socketio; do
    cp "$tmp/http-parser-0.9.0/http_parser/$m.py" "$site/http_parser/"
  done
  rm -rf "$tmp"
fi
# corral's own bytecode, written here: every master, agent and CLI run imports
# hundreds of its modules, and compiling them from source again costs each process
# ~0.6 s of CPU wherever PYTHONDONTWRITEBYTECODE stops Python from caching them.
.venv/bin/python -m compileall -q corral >/dev/null
