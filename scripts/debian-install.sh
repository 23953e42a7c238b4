# Sourced by the install-*-deps.sh scripts, not run: what they share about
# installing Debian packages on a bare machine.

# debian_install_begin FOR PKG...: the packages PKG... that FOR needs are
# missing. Unless this is root, it says the command to run and exits 1;
# as root, it readies apt-get (noninteractive, package lists updated), so
# the caller installs them next.
debian_install_begin() {
  local what=$1
  shift
  if [ "$(id -u)" != 0 ]; then
    echo "$what needs $*; installing them needs root: run 'sudo apt-get install -y $*'" >&2
    exit 1
  fi
  echo "installing Debian's $* for $what…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
}
