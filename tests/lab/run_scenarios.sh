#!/usr/bin/env bash
# Runs molecule scenarios, MOLECULE_JOBS (2) at a time, in the order given
# (longest first keeps both slots busy). Each scenario has its own host
# addresses and container names for that. The suite keeps a two-core machine
# busy (cpuacct: 1.8-2.0 cores), so a second slot mostly fills one scenario's
# waits (sleeps, timeouts, restarts) with another's work; it does not double
# the throughput. Every scenario's output goes to
# .lab/logs/<scenario>.log; the end of the log of one that fails is printed.
# Scenarios named in CONTROLLER_SCENARIOS run in the command MQTTACTION_CONTROLLER
# gives (the Makefile's: the lab's controller container with ansible-core 2.21).
# Exits non-zero when any scenario failed.
#   tests/lab/run_scenarios.sh scenario...
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
logs="$root/.lab/logs"
mkdir -p "$logs"
rm -f "$logs/failed"

run_one() {
  local scenario=$1 logs=$2 start runner=""
  start=$(date +%s)
  case " ${CONTROLLER_SCENARIOS:-} " in
    *" $scenario "*) runner=${MQTTACTION_CONTROLLER:?the controller command (see the Makefile)} ;;
  esac
  echo "=== molecule scenario $scenario started${runner:+ (in the controller container)}"
  # shellcheck disable=SC2086  # the runner is a command line
  if $runner molecule test -s "$scenario" >"$logs/$scenario.log" 2>&1; then
    echo "=== molecule scenario $scenario passed in $(( $(date +%s) - start )) s"
  else
    echo "=== molecule scenario $scenario FAILED in $(( $(date +%s) - start )) s"
    echo "$scenario" >>"$logs/failed"
    return 1
  fi
}
export -f run_one

cd "$root" || exit 1
printf '%s\n' "$@" | xargs -P "${MOLECULE_JOBS:-2}" -I{} bash -c 'run_one "$1" "$2"' _ {} "$logs"
status=$?
if [ -f "$logs/failed" ]; then
  while read -r scenario; do
    echo "=== the end of $logs/$scenario.log"
    tail -n 200 "$logs/$scenario.log"
  done <"$logs/failed"
fi
exit $status
