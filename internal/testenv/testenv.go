// Package testenv decides what a test does when something it really needs
// from outside Go is missing — a program (kcat, java, mvn), a Python with
// the notebooks' packages, a filesystem it must mount: on a developer's
// machine it skips, saying how to get the dependency; under CI, which
// installs them all, it fails, so that a check cannot silently stop
// running.
//
// Opt-in drills (STAKHANOV_DRILL=1 and the like) and testing.Short() are
// choices, not missing dependencies: they skip with t.Skip as before.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// CI reports whether the CI variable is set to a true value: anything but
// "", "0" or "false" (any case).
func CI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "0", "false":
		return false
	}
	return true
}

// Missing reports that what the test needs is not there: it fails the
// test under CI and skips it elsewhere. what names the dependency and why
// it is missing; how says how to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s; %s (CI=%q: a missing dependency fails the test instead of skipping it)", what, how, os.Getenv("CI"))
	}
	t.Skipf("%s; %s (skipped; under CI this fails)", what, how)
}

// Command returns the path of the program name on PATH, or reports it
// Missing with how.
func Command(t testing.TB, name, how string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "no "+name+" on PATH", how)
	}
	return path
}
