package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestCI(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "0": false, "false": false, "FALSE": false, " false ": false,
		"1": true, "true": true, "yes": true, "github-actions": true,
	} {
		t.Setenv("CI", v)
		if got := CI(); got != want {
			t.Errorf("CI=%q: CI() = %v, want %v", v, got, want)
		}
	}
}

// TestMissing runs a test that misses a dependency in a child process,
// with CI set and unset: it must fail in the one and skip in the other,
// and say how to get the dependency in both.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Command(t, "stakhanov-no-such-program", "install it with make deps")
		t.Fatal("Command returned for a program that is not on PATH")
		return
	}
	for _, c := range []struct {
		ci, want string
		fails    bool
	}{
		{"true", "--- FAIL: TestMissing", true},
		{"", "--- SKIP: TestMissing", false},
		{"false", "--- SKIP: TestMissing", false},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails || !strings.Contains(string(out), c.want) ||
			!strings.Contains(string(out), "no stakhanov-no-such-program on PATH; install it with make deps") {
			t.Errorf("CI=%q: exit %v, output:\n%s", c.ci, err, out)
		}
	}
}
