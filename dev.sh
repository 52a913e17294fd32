#!/usr/bin/env bash
# sealhub's two entry points, each usable on a fresh machine with Python 3.11:
#   ./dev.sh demo [serve options]   install, then run the gateway with embedded defaults + demo data
#   ./dev.sh test [pytest options]  install, then ruff, mypy and the whole test suite
# Everything goes into ./.venv; Debian packages the tests need are installed with apt-get.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
            echo "$candidate"
            return
        fi
    done
    echo "sealhub needs Python 3.11 or 3.12 (the embedded PostgreSQL wheel covers those)" >&2
    exit 1
}

apt_install() {
    # Only what is missing; needs root (or sudo) the first time on a fresh machine.
    local missing=("$@")
    [ ${#missing[@]} -gt 0 ] || return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

system_packages() {
    local missing=()
    command -v fc-list >/dev/null 2>&1 || missing+=(fontconfig)
    { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q .; } || missing+=(fonts-wqy-zenhei)
    if [ "${1:-}" = test ]; then
        command -v pdfsig >/dev/null 2>&1 || missing+=(poppler-utils)
        command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
        command -v qpdf >/dev/null 2>&1 || missing+=(qpdf)
        command -v openssl >/dev/null 2>&1 || missing+=(openssl)
        command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-writer-nogui)
        command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
        # The browser tests drive Debian's build through pip playwright (no browser download).
        [ -x /usr/bin/chromium ] || missing+=(chromium)
    fi
    apt_install "${missing[@]}"
}

venv() {
    local python stamp wanted
    python=$(pick_python)
    [ -x .venv/bin/python ] || { say "creating .venv with $python"; "$python" -m venv .venv; }
    stamp=.venv/.sealhub-installed
    wanted=$(cat pyproject.toml clients/python_sdk/pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
        say "installing sealhub and its dependencies into .venv"
        .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
        .venv/bin/python -m pip install --quiet -e '.[dev]' -e clients/python_sdk
        echo "$wanted" >"$stamp"
    fi
}

command=${1:-}
shift || true
case "$command" in
    demo)
        system_packages demo
        venv
        # People at a terminal read text logs; piped or redirected output stays JSON lines.
        if [ -t 2 ] && [ -z "${SEALHUB_LOG_FORMAT:-}" ]; then export SEALHUB_LOG_FORMAT=text; fi
        exec .venv/bin/sealhub serve --demo "$@"
        ;;
    test)
        system_packages test
        venv
        say "ruff check"; .venv/bin/ruff check .
        say "ruff format --check"; .venv/bin/ruff format --check .
        say "mypy"; .venv/bin/mypy
        # Two workers by default (SEALHUB_TEST_WORKERS=auto: one a core); whole files stay on
        # one worker, so a module's gateway boots once. A later -n in the arguments wins.
        say "pytest"; .venv/bin/pytest -n "${SEALHUB_TEST_WORKERS:-2}" --dist loadfile "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo [--data-dir DIR] [--host H] [--port P] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
