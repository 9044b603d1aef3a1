#!/bin/bash
# Runs every fuzz target of the project for a short time each
# (FUZZTIME, default 10s), starting from the corpora checked in under
# each package's testdata/fuzz/. A crash fails the run and leaves the
# input that caused it in testdata/fuzz/<target>/, to be committed with
# the fix. Used by scripts/test.sh; run alone for a longer session:
#   FUZZTIME=5m ./scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
fuzztime="${FUZZTIME:-10s}"
grep -rl --include='*_test.go' '^func Fuzz' internal cmd 2>/dev/null | sort | while read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "fuzz: $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 2 "$pkg" >/tmp/gvs-fuzz.log 2>&1; then
			cat /tmp/gvs-fuzz.log
			# Go's fuzzer can report "context deadline exceeded" when the
			# time runs out in the middle of an input, without a failing
			# input: that is not a finding. Anything else is.
			if grep -q 'context deadline exceeded' /tmp/gvs-fuzz.log && ! grep -q 'Failing input written' /tmp/gvs-fuzz.log; then
				echo "fuzz: $pkg $target: time ran out mid-input (no failing input); not a failure"
				continue
			fi
			echo "fuzz: $pkg $target failed"
			exit 1
		fi
	done
done
