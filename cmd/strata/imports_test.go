package main

import (
	"os/exec"
	"strings"
	"testing"
)

// importRule constrains the imports of the module's packages under from
// (a module-relative path; "x/..." is x and everything under it).
type importRule struct {
	from string
	// only, when set, is every module package from may import (besides
	// its own tree).
	only []string
	// never are the module packages from must not import.
	never []string
	why   string
}

// importRules are the layout's arrows (design §2): imports flow one way,
// one layer down at each call.
var importRules = []importRule{
	{from: "engine/...", only: []string{"engine/..."},
		why: "the storage contract depends on nothing of the program"},
	{from: "engines/...", only: []string{"engine/...", "engines/..."},
		why: "engines implement the contract and nothing else"},
	{from: "plugins/examples/...", only: []string{"engine/...", "engines/...", "plugins/..."},
		why: "example plugins serve engines through the plugin boundary"},
	{from: "plugins", only: []string{"engine/...", "plugins/enginepb/..."},
		why: "the plugin boundary sees only the storage contract"},
	{from: "plugins/enginepb/...", only: []string{"plugins/enginepb/..."},
		why: "the generated service is the boundary's wire format alone"},
	{from: "coordination/...", only: []string{"coordination/...", "engine/..."},
		why: "coordination is below the broker and the config; topic-config validation is injected through its Options"},
	{from: "config/...", never: []string{"broker/...", "cmd/...", "bench/...", "engines/...", "plugins/..."},
		why: "the config is read by the whole program and reads none of it"},
	{from: "broker/internal/...", never: []string{"broker"},
		why: "the broker's subsystems never call back up into the wire layer"},
	{from: "broker/internal/group/...", never: []string{"broker/internal/partition/...", "broker/internal/replication/..."},
		why: "the group store reaches storage through an interface the broker wires"},
	{from: "broker/internal/partition/...", never: []string{"broker/internal/group/...", "broker/internal/replication/..."},
		why: "partitions know replication and groups only through interfaces"},
	{from: "broker/...", never: []string{"engines/...", "plugins/..."},
		why: "the broker opens engines by name through the registry; cmd links them in"},
	{from: "...", never: []string{"cmd/...", "bench/..."},
		why: "nothing imports the programs or the benchmarks"},
}

// matches reports whether the module-relative package path pkg is under
// pattern.
func matches(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	return pkg == pattern
}

func matchesAny(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if matches(p, pkg) {
			return true
		}
	}
	return false
}

// TestForbiddenImports checks the import rules of the module's packages
// (test files aside), as Pebble's internal/lint does, and names every
// offending import.
func TestForbiddenImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/strata-broker/strata/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/strata-broker/strata"
	rel := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from, ok := rel(fields[0])
		if !ok {
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			to, ok := rel(imp)
			if !ok {
				continue // the standard library and other modules
			}
			for _, r := range importRules {
				if !matches(r.from, from) || matches(r.from, to) && r.only != nil {
					continue
				}
				if r.only != nil && !matchesAny(r.only, to) || matchesAny(r.never, to) {
					t.Errorf("%s imports %s: %s", from, to, r.why)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d packages: go list found too little", checked)
	}
}

// The rules catch what they are meant to: a broker subsystem calling back
// up, and coordination reading the config.
func TestImportRulesMatch(t *testing.T) {
	for _, c := range []struct {
		from, to string
		bad      bool
	}{
		{"broker/internal/group", "broker", true},
		{"broker/internal/group", "broker/internal/partition", true},
		{"broker/internal/replication", "broker/internal/partition", false},
		{"coordination/zk", "config", true},
		{"coordination/zk", "coordination", false},
		{"engines/mmap", "engines/segment", false},
		{"engines/mmap", "config", true},
		{"broker", "engines/mmap", true},
		{"broker", "cmd/strata", true},
		{"cmd/strata", "engines/mmap", false},
		{"plugins/examples/builtin", "engines/mem", false},
		{"plugins", "engines/mem", true},
	} {
		bad := false
		for _, r := range importRules {
			if !matches(r.from, c.from) || matches(r.from, c.to) && r.only != nil {
				continue
			}
			if r.only != nil && !matchesAny(r.only, c.to) || matchesAny(r.never, c.to) {
				bad = true
			}
		}
		if bad != c.bad {
			t.Errorf("%s → %s: forbidden %v, want %v", c.from, c.to, bad, c.bad)
		}
	}
}
