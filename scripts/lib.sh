# Helpers shared by the scripts (sourced, never run). The caller is at the project's root.

# Export the .env values the environment does not set (volspike/dotenv.py: the one .env parser;
# the shell always wins). Needs any python3.
load_env() {
  local exports
  exports="$("${PYTHON:-python3}" volspike/dotenv.py)" || exit 2
  eval "$exports"
}

# Run a command as root: directly when root; with sudo when it needs no password, or when a
# terminal can answer its prompt; otherwise say what to run by hand, and fail.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    sudo "$@"
  else
    printf '[%s] this step needs root and no sudo can ask for a password here; run as root:\n    %s\n' \
      "$(basename "$0" .sh)" "$*" >&2
    return 1
  fi
}

# Install Debian packages (as root, see as_root).
apt_install() {
  printf '[%s] installing %s from the OS packages\n' "$(basename "$0" .sh)" "$*" >&2
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
