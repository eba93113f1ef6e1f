#!/usr/bin/env bash
# Run the test stages, time each one, keep going after a failure, and exit non-zero if any failed.
#   --only STAGE      units | sanity | lint | tarball | molecule (default: all, in that order)
#   --scenario NAME   only this Molecule scenario (implies the molecule stage runs only it)
#   --platform REL    only this platform (bookworm or trixie) of each scenario
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/env.sh

only="" scenario="" platform=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    *) echo "run-tests: unknown argument $1" >&2; exit 2 ;;
  esac
done
stages=(units sanity lint tarball molecule)
[ -n "$only" ] && stages=("$only")
[ -n "$scenario" ] && [ -z "$only" ] && stages=(molecule)

results=()
failed=0
run_start=$(date +%s)
logdir="$top/.cache/logs"
mkdir -p "$logdir"

run_stage() {
  local name=$1; shift
  local start end rc
  echo "==> [$name] $(date -u +%H:%M:%S) starting"
  start=$(date +%s)
  "$@"
  rc=$?
  end=$(date +%s)
  local tests="-"
  declare -F "count_$name" >/dev/null && tests=$("count_$name")
  if [ $rc -eq 0 ]; then
    results+=("$(printf '%-28s ok      %5ss %6s' "$name" $((end - start)) "$tests")")
  else
    results+=("$(printf '%-28s FAILED  %5ss %6s (exit %s)' "$name" $((end - start)) "$tests" "$rc")")
    failed=$((failed + 1))
  fi
  echo "==> [$name] finished in $((end - start))s (exit $rc)"
}

# The number of tests a log reports: the sum of pytest's "N passed" and "N failed" (every verify of a scenario),
# or of the lines matching a pattern.
pytest_count() {
  grep -hE '^(=+ )?([0-9]+ [a-z]+, )*[0-9]+ (passed|failed).* in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$@" 2>/dev/null \
    | grep -oE '[0-9]+ (passed|failed)' | awk '{n += $1} END {print n + 0}'
}
count_units() { pytest_count "$logdir/units.log"; }
count_sanity() { local n; n=$(grep -c "^Running sanity test " "$logdir/sanity.log" 2>/dev/null); echo "${n:-0}"; }

stage_units() {
  python -m pytest -p no:cacheprovider -q tests/unit 2>&1 | tee "$logdir/units.log"
  return "${PIPESTATUS[0]}"
}

# ansible-test insists on running from .../ansible_collections/<ns>/<name>, and resolves symlinks,
# so sanity runs on a copy of the tracked (and untracked, not ignored) files.
stage_sanity() {
  local base="$top/.cache/ansible-test/run-$$"
  local dest="$base/ansible_collections/fediops/mastodon"
  rm -rf "$base" && mkdir -p "$dest"
  git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents -P {} "$dest"/ 2>/dev/null || return 1
  # The copy lives in the checkout's ignored .cache/, so give it a repository of its own: ansible-test
  # lists files with git and would otherwise see the outer repository, which ignores the copy.
  (cd "$dest" && git init -q && git add -A) || return 1
  local ctl rc=0
  ctl=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  : >"$logdir/sanity.log"
  (cd "$dest" && HOME="$top/.cache/home" ansible-test sanity --venv --python "$ctl" --color no) 2>&1 | tee -a "$logdir/sanity.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  # Debian 12's and 13's own Pythons, for the code that runs on the target hosts: only the tests that depend on the
  # Python version (the others ran above, and would take a minute more of CPU beside the scenarios).
  for py in 3.11 3.13; do
    [ "$py" = "$ctl" ] && continue
    (cd "$dest" && HOME="$top/.cache/home" ansible-test sanity --venv --python "$py" --color no --test compile --test import) 2>&1 | tee -a "$logdir/sanity.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  done
  rm -rf "$base"
  return $rc
}

stage_lint() {
  local rc=0
  yamllint -s . || rc=1
  ansible-lint --offline --profile production || rc=1
  return $rc
}

stage_tarball() {
  ./scripts/test-tarball.sh
}

# Scenarios run MOLECULE_JOBS at a time (default 2): they use separate containers and ephemeral
# folders, and much of a converge is waiting on apt and services. Each writes .cache/logs/molecule-<name>.log.
# The longest start first, so that they do not end the run alone.
order=(split read_replica site pgbouncer redis_cache sidekiq_queues standin)
# Scenarios whose hosts stand for one server of one release (MOLECULE_RELEASE names the image): the
# releases they run on. One multi-host run per release costs about 11 minutes here, so each of these
# runs on one release, and each release gets one: site (one host) on Debian 12, split on Debian 13.
# read_replica's pair runs Debian 12: split has the replica on Debian 13. The other role scenarios run both
# releases side by side. --platform REL runs only REL everywhere (read_replica on trixie too).
declare -A releases_of=([split]=trixie [site]=bookworm [read_replica]=bookworm)
stage_molecule() {
  local scenarios=() s jobs=${MOLECULE_JOBS:-2}
  if [ -n "$scenario" ]; then
    scenarios=("$scenario")
  else
    for s in "${order[@]}" $(ls molecule); do
      [ -f "molecule/$s/molecule.yml" ] && [[ " ${scenarios[*]} " != *" $s "* ]] && scenarios+=("$s")
    done
  fi
  ./scripts/build-images.sh bookworm trixie || return 1
  ./scripts/bake-standin.sh ${platform:-bookworm trixie} || return 1
  # Initialised: under set -u, the size of a declared but never assigned array is an unbound variable.
  declare -A pid_of=() start_of=()
  local name rc
  molecule_reaped=0
  # The scenarios running are those not reaped yet. wait -n names their processes: the static stages may
  # run beside them in this shell, and their end must not start another scenario.
  for s in "${scenarios[@]}"; do
    while [ "${#pid_of[@]}" -ge "$jobs" ]; do
      wait -n "${pid_of[@]}"
      reap_molecule
    done
    echo "==> [molecule $s] $(date -u +%H:%M:%S) starting"
    start_of[$s]=$(date +%s)
    rm -f "$logdir/molecule-$s.rc"
    # The tests read the scenario's ansible.log; a run that was killed before its destroy leaves one behind.
    rm -f "$ANSIBLE_HOME"/tmp/molecule.*."$s"/ansible.log
    (
      if [ -n "${releases_of[$s]:-}" ]; then
        rc=0
        for rel in ${platform:-${releases_of[$s]}}; do
          MOLECULE_RELEASE=$rel molecule test -s "$s" || rc=1
        done
        [ $rc -eq 0 ]
      elif [ -n "$platform" ] && molecule list -s "$s" -f plain 2>/dev/null | grep -q "^$s-$platform "; then
        molecule test -s "$s" --platform-name "$s-$platform"
      else
        molecule test -s "$s"
      fi >"$logdir/molecule-$s.log" 2>&1
      echo $? >"$logdir/molecule-$s.rc"
    ) &
    pid_of[$s]=$!
  done
  while [ "${#pid_of[@]}" -gt 0 ]; do
    wait -n "${pid_of[@]}"
    reap_molecule
  done
  # A stage that ran fewer scenarios than it listed must not pass.
  if [ "$molecule_reaped" -ne "${#scenarios[@]}" ]; then
    echo "run-tests: ${#scenarios[@]} scenarios listed, $molecule_reaped ran to an end" >&2
    return 1
  fi
}

# Report every scenario whose process has ended and that was not reported yet.
reap_molecule() {
  local s rc end tests
  for s in "${!pid_of[@]}"; do
    if [ ! -f "$logdir/molecule-$s.rc" ]; then
      # Still running, or killed before it could write its exit status.
      kill -0 "${pid_of[$s]}" 2>/dev/null && continue
      echo 1 >"$logdir/molecule-$s.rc"
    fi
    rc=$(cat "$logdir/molecule-$s.rc")
    end=$(date +%s)
    grep -E '^(=+ .*(passed|failed|error).* =+|PASSED|FAILED|.*changed=[1-9].*)' "$logdir/molecule-$s.log" | tail -n 5
    tests=$(pytest_count "$logdir/molecule-$s.log")
    if [ $rc -eq 0 ]; then
      results+=("$(printf '%-28s ok      %5ss %6s' "molecule $s" $((end - ${start_of[$s]})) "$tests")")
    else
      echo "---- last 80 lines of $logdir/molecule-$s.log ----"
      tail -n 80 "$logdir/molecule-$s.log"
      results+=("$(printf '%-28s FAILED  %5ss %6s (exit %s)' "molecule $s" $((end - ${start_of[$s]})) "$tests" "$rc")")
      failed=$((failed + 1))
    fi
    echo "==> [molecule $s] finished in $((end - ${start_of[$s]}))s (exit $rc)"
    unset "pid_of[$s]"
    molecule_reaped=$((molecule_reaped + 1))
  done
}

# With the Molecule stage in the run, the unit tests, sanity, lint and the tarball check run beside it rather than
# before it: they need the CPU while the scenarios mostly wait on apt and services, and the run is about 5 minutes
# shorter. Their output goes to .cache/logs/static.log and is printed when they end.
static=()
if [[ " ${stages[*]} " == *" molecule "* ]]; then
  for stage in "${stages[@]}"; do
    case "$stage" in units|sanity|lint|tarball) static+=("$stage") ;; esac
  done
fi
static_pid=""
for stage in "${stages[@]}"; do
  case "$stage" in
    units|sanity|lint|tarball)
      if [ ${#static[@]} -eq 0 ]; then
        run_stage "$stage" "stage_$stage"
      elif [ -z "$static_pid" ]; then
        echo "==> [${static[*]}] $(date -u +%H:%M:%S) starting beside Molecule, output in $logdir/static.log"
        (
          for s in "${static[@]}"; do
            run_stage "$s" "stage_$s"
          done
          printf '%s\n' "${results[@]}" >"$logdir/static.results"
          echo "$failed" >"$logdir/static.failed"
        ) >"$logdir/static.log" 2>&1 &
        static_pid=$!
        results_before=("${results[@]}")
        failed_before=$failed
      fi ;;
    molecule) stage_molecule || { results+=("molecule setup              FAILED"); failed=$((failed + 1)); } ;;
    *) echo "run-tests: unknown stage $stage" >&2; exit 2 ;;
  esac
done
if [ -n "$static_pid" ]; then
  wait "$static_pid"
  echo "---- ${static[*]} (ran beside Molecule) ----"
  cat "$logdir/static.log"
  # The background copy started from the results before it; keep only the lines it added.
  mapfile -t static_results <"$logdir/static.results"
  results+=("${static_results[@]:${#results_before[@]}}")
  failed=$((failed + $(cat "$logdir/static.failed") - failed_before))
fi

echo
echo "Stage                        result    time  tests"
printf '%s\n' "${results[@]}"
echo "stages: $(( ${#results[@]} - failed )) passed, $failed failed; whole run $(( $(date +%s) - run_start ))s"
[ $failed -eq 0 ]
