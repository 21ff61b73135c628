# Shared by scripts/run and scripts/test: make .venv and install simgate into it when needed.
# Usage: . scripts/_venv.sh; ensure_venv "" | ensure_venv "[dev]"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

ensure_venv() {
  local extras="$1"
  local python="${PYTHON:-python3}"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "simgate: creating $VENV" >&2
    "$python" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >&2
  fi
  # Reinstall only when pyproject.toml changed since the last install with these extras. The
  # editable install serves every extra, so an up-to-date "[dev]" install (scripts/test) also
  # serves scripts/run: without that, starting scripts/run beside a running scripts/test
  # reinstalled simgate under the tests' feet. The lock keeps two installs from overlapping.
  local stamp="$VENV/.simgate-installed${extras//[^a-z]/-}"
  local dev_stamp="$VENV/.simgate-installed-dev-"
  local want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  (
    flock 9
    if _stamp_is "$stamp" "$want"; then return 0; fi
    if [ -z "$extras" ] && _stamp_is "$dev_stamp" "$want"; then return 0; fi
    echo "simgate: installing simgate$extras into $VENV" >&2
    "$VENV/bin/pip" install -q -e "$ROOT$extras" >&2
    echo "$want" > "$stamp"
  ) 9>"$VENV/.install.lock"
}

_stamp_is() {
  [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# Whether the command CMD of a Debian package is here; "php-curl-check" stands for PHP's curl
# module (php-curl has no command of its own).
deb_present() {
  case "$1" in
    php-curl-check) php -m 2>/dev/null | grep -qi '^curl$' ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

# Install a Debian package when its command is missing (as root with apt-get); otherwise warn.
# Usage: ensure_deb espeak-ng espeak-ng "text to speech (voice sendCode) will fail"
# The package lists are updated once per run, before the first install (scripts/test installs
# several packages on a fresh machine).
_apt_updated=0
ensure_deb() {
  local cmd="$1" pkg="$2" without="$3"
  deb_present "$cmd" && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "simgate: $cmd is missing and cannot be installed here (not root or no apt-get):" \
      "$without; install the Debian package $pkg" >&2
    return 0
  fi
  if [ "$_apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
    _apt_updated=1
  fi
  echo "simgate: installing Debian package $pkg" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2 ||
    echo "simgate: could not install $pkg: $without" >&2
}
