# Shared by the perf scripts: install what a fresh Debian machine lacks.
#   need_tools wrk nginx redis-server      (cmake and taskset are always checked)
need_tools() {
  local missing=() t
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
  for t in "$@"; do
    case "$t" in
      nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light) ;;
      *) command -v "$t" >/dev/null 2>&1 || missing+=("$t") ;;
    esac
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
  fi
}
