package main

// Checks of the container files at the top of the repository: the
// Dockerfile, .dockerignore and docker-compose.yml. Docker is not needed:
// the compose file is read with gopkg.in/yaml.v3, and every environment
// variable it gives a broker goes through the broker's own config loader,
// so a key renamed in config, or a compose variable the broker would
// reject or ignore, fails here rather than in a container.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/strata-broker/strata/config"
)

// repoRoot is the module's top directory; tests run in cmd/strata.
const repoRoot = "../.."

// What the compose file promises its users.
const (
	composeAdvertisedDefault = "127.0.0.1" // ${KAFKA_ADVERTISED_HOST_NAME:-127.0.0.1}
	composeLogDir            = "/var/lib/strata"
	composeContainerPort     = 9092
)

// composeTopics are the topics a service creates: two replicas each on the
// three-broker cluster (strata1..3), one on the scalable service, which
// may run alone.
func composeTopics(service string) []config.TopicSpec {
	rf := int16(2)
	if service == "strata" {
		rf = 1
	}
	return []config.TopicSpec{
		{Name: "Topic1", Partitions: 3, ReplicationFactor: rf},
		{Name: "Topic2", Partitions: 2, ReplicationFactor: rf},
	}
}

func TestComposeServices(t *testing.T) {
	services := composeServices(t)
	zk := yamlMap(t, services["zookeeper"], "services.zookeeper")
	if got := yamlString(t, zk["image"], "zookeeper.image"); got != "zookeeper:3.8" {
		t.Errorf("zookeeper image %q, want zookeeper:3.8", got)
	}
	if !slices.ContainsFunc(yamlStrings(t, zk["ports"], "zookeeper.ports"), func(p string) bool { return strings.HasSuffix(p, ":2181") }) {
		t.Errorf("zookeeper does not publish 2181: %v", zk["ports"])
	}

	brokers := composeBrokers(t, services)
	if _, ok := brokers["strata"]; !ok {
		t.Fatalf("no strata service; brokers: %v", slices.Sorted(maps.Keys(brokers)))
	}
	for name, svc := range brokers {
		// The image is the Dockerfile at the top, built from the whole
		// repository.
		switch b := svc["build"].(type) {
		case string:
			if b != "." {
				t.Errorf("%s: build %q, want .", name, b)
			}
		case map[string]any:
			if c := yamlString(t, b["context"], name+".build.context"); c != "." {
				t.Errorf("%s: build context %q, want .", name, c)
			}
			if d, ok := b["dockerfile"]; ok && d != "Dockerfile" {
				t.Errorf("%s: dockerfile %v, want Dockerfile", name, d)
			}
		default:
			t.Errorf("%s: build %v, want .", name, svc["build"])
		}
		if !slices.Contains(dependsOn(t, name, svc["depends_on"]), "zookeeper") {
			t.Errorf("%s does not depend on zookeeper", name)
		}
		if _, ok := svc["container_name"]; ok && name == "strata" {
			t.Errorf("strata has a container_name: --scale needs each replica to get its own")
		}
	}
}

// TestComposeBrokerEnvironment loads each broker service's configuration
// as the container would (the image's ENV, then the service's environment
// after compose's ${...} interpolation) and checks what the broker makes of
// it, and that the published ports and volumes agree with it.
func TestComposeBrokerEnvironment(t *testing.T) {
	services := composeServices(t)
	brokers := composeBrokers(t, services)
	image := dockerfile(t)
	imageEnv := image.env(t)

	for _, tc := range []struct {
		name  string
		shell map[string]string // the environment compose interpolates from
	}{
		{"host address set", map[string]string{"KAFKA_ADVERTISED_HOST_NAME": "192.0.2.10"}},
		{"host address unset", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkComposeBrokers(t, brokers, imageEnv, tc.shell) })
	}

	if !slices.Contains(image.args("VOLUME"), composeLogDir) {
		t.Errorf("the image declares no VOLUME %s: %v", composeLogDir, image.args("VOLUME"))
	}
	if !slices.Contains(image.args("EXPOSE"), strconv.Itoa(composeContainerPort)) {
		t.Errorf("the image does not EXPOSE %d: %v", composeContainerPort, image.args("EXPOSE"))
	}
}

// checkComposeBrokers loads every broker service's configuration, with
// shell as the environment compose interpolates from.
func checkComposeBrokers(t *testing.T, brokers map[string]map[string]any, imageEnv []string, shell map[string]string) {
	wantHost := shell["KAFKA_ADVERTISED_HOST_NAME"]
	if wantHost == "" {
		wantHost = composeAdvertisedDefault
	}
	covered := map[string][]int{} // host ports reaching a broker, by how it is run
	for name, svc := range brokers {
		env := composeEnv(t, name, svc["environment"], shell)
		for _, kv := range env {
			if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "KAFKA_") && !strings.HasPrefix(k, "STRATA_") {
				t.Errorf("%s: %s is not broker configuration", name, k)
			}
		}
		cfg := loadComposeConfig(t, name, containerEnv(imageEnv, env))

		if cfg.ZookeeperConnect != "zookeeper:2181" {
			t.Errorf("%s: zookeeper.connect %q, want zookeeper:2181", name, cfg.ZookeeperConnect)
		}
		if want := composeTopics(name); !reflect.DeepEqual(cfg.CreateTopics, want) {
			t.Errorf("%s: KAFKA_CREATE_TOPICS gives %+v, want %+v", name, cfg.CreateTopics, want)
		}
		if cfg.BrokerID != -1 {
			t.Errorf("%s: broker.id %d, want -1 (generated by ZooKeeper)", name, cfg.BrokerID)
		}
		if !slices.Equal(cfg.LogDirs, []string{composeLogDir}) {
			t.Errorf("%s: log.dirs %v, want %s", name, cfg.LogDirs, composeLogDir)
		}
		// One listener on every interface of the container, on the
		// port the image exposes and the compose file publishes.
		wantListen := config.Listener{Name: "PLAINTEXT", Port: composeContainerPort}
		if len(cfg.Listeners) != 1 || cfg.Listeners[0] != wantListen {
			t.Fatalf("%s: listeners %v, want [%v]", name, cfg.Listeners, wantListen)
		}
		adv := cfg.AdvertisedListeners[0]
		if adv.Host != wantHost {
			t.Errorf("%s: advertised host %q, want %q", name, adv.Host, wantHost)
		}

		ports := composePorts(t, name, svc["ports"])
		if len(ports) != 1 {
			t.Fatalf("%s: %d port mappings, want 1: %v", name, len(ports), ports)
		}
		p := ports[0]
		if p.container != composeContainerPort {
			t.Errorf("%s: publishes container port %d, but the broker listens on %d", name, p.container, composeContainerPort)
		}
		// The advertised port must be one the host publishes, or
		// clients outside cannot follow Metadata to this broker.
		if int(adv.Port) < p.hostLo || int(adv.Port) > p.hostHi {
			t.Errorf("%s: advertises port %d, not among the host ports %d-%d it is published on", name, adv.Port, p.hostLo, p.hostHi)
		}
		run := "fixed"
		if p.hostHi > p.hostLo {
			// A range: one host port per replica, for --scale.
			run = name
			// Which port a replica gets is Docker's choice, unknown
			// inside it; the first of the range is the likeliest for one.
			if adv.Port != int32(p.hostLo) {
				t.Errorf("%s: advertises %d, not %d, the first port of its range", name, adv.Port, p.hostLo)
			}
		} else if adv.Port != int32(p.hostLo) {
			t.Errorf("%s: advertises port %d, but is published on host port %d", name, adv.Port, p.hostLo)
		}
		for port := p.hostLo; port <= p.hostHi; port++ {
			covered[run] = append(covered[run], port)
		}

		// A volume for the log dir, anonymous for a scalable service:
		// replicas sharing a named volume would share one
		// meta.properties, hence one broker id.
		vols := yamlStrings(t, svc["volumes"], name+".volumes")
		i := slices.IndexFunc(vols, func(v string) bool { return volumeTarget(v) == composeLogDir })
		switch {
		case i < 0:
			t.Errorf("%s: no volume at %s: %v", name, composeLogDir, vols)
		case p.hostHi > p.hostLo && vols[i] != composeLogDir:
			t.Errorf("%s: volume %q is shared by every replica of --scale; use the anonymous %s", name, vols[i], composeLogDir)
		}
	}
	// Host ports 9092-9094 reach brokers, both through --scale and
	// through the fixed services.
	for run, ports := range covered {
		slices.Sort(ports)
		if !slices.Equal(ports, []int{9092, 9093, 9094}) {
			t.Errorf("%s: host ports %v, want 9092-9094", run, ports)
		}
	}
	if len(covered) != 2 {
		t.Errorf("ways to run three brokers: %v, want the scalable strata and the fixed services", slices.Sorted(maps.Keys(covered)))
	}
}

// containerEnv is a container's environment: the image's, overridden by
// the service's.
func containerEnv(image, service []string) []string {
	out := slices.Clone(service)
	for _, kv := range image {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(service, func(s string) bool { return strings.HasPrefix(s, name+"=") }) {
			out = append(out, kv)
		}
	}
	return out
}

// loadComposeConfig runs env through the broker's config loader and checks
// that every variable was read as a key (none unknown, none dropped, none
// accepted only with a warning that it has no effect).
func loadComposeConfig(t *testing.T, service string, env []string) config.Config {
	t.Helper()
	var warnings bytes.Buffer
	cfg, err := config.Load(config.Source{Env: env, Logger: slog.New(slog.NewTextHandler(&warnings, nil))})
	if err != nil {
		t.Fatalf("%s: the broker refuses its environment: %v", service, err)
	}
	if warnings.Len() > 0 {
		t.Errorf("%s: the broker warns about its environment:\n%s", service, warnings.String())
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name == "KAFKA_CREATE_TOPICS" {
			continue // not a key; checked through cfg.CreateTopics
		}
		key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "KAFKA_"), "_", "."))
		if s, ok := strings.CutPrefix(name, "STRATA_"); ok {
			key = "strata." + strings.ToLower(strings.ReplaceAll(s, "_", "."))
		}
		if _, engine := cfg.Engine[key]; engine {
			continue // a strata.* key for the engines, passed through
		}
		if where, set := cfg.Origin(key); !set || where != "environment variable "+name {
			t.Errorf("%s: %s is not read as %s (origin %q, set %v)", service, name, key, where, set)
		}
	}
	return cfg
}

func TestComposeDockerfile(t *testing.T) {
	d := dockerfile(t)
	froms := d.args("FROM")
	if len(froms) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	// The build stage's Go is the one go.mod asks for.
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	if want := "golang:" + string(m[1]); froms[0] != want {
		t.Errorf("build stage FROM %s, want %s (go.mod: go %s)", froms[0], want, m[1])
	}
	var build string
	for _, r := range d.all("RUN") {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-o /strata", "./cmd/strata", "-trimpath"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build %q lacks %s", build, want)
		}
	}
	// The runtime stage runs the binary the build stage made.
	if !slices.ContainsFunc(d.all("COPY"), func(c string) bool { return strings.HasPrefix(c, "--from=build /strata /strata") }) {
		t.Errorf("no COPY --from=build /strata /strata: %v", d.all("COPY"))
	}
	entry := d.all("ENTRYPOINT")
	if len(entry) != 1 {
		t.Fatalf("%d ENTRYPOINTs, want 1", len(entry))
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry[0]), &argv); err != nil {
		t.Fatalf("ENTRYPOINT %s is not the exec (JSON) form: %v", entry[0], err)
	}
	if !slices.Equal(argv, []string{"/strata", "serve"}) {
		t.Errorf("ENTRYPOINT %q, want [/strata serve]", argv)
	}
	// The image's environment is configuration the broker reads.
	loadComposeConfig(t, "Dockerfile", d.env(t))
}

// TestComposeDockerignore checks that the build context keeps what the
// build reads and drops the binaries a checkout may hold.
func TestComposeDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf(".dockerignore: exceptions (%s) are beyond this check", l)
			}
			patterns = append(patterns, strings.TrimPrefix(l, "/"))
		}
	}
	// Docker matches a pattern against a path and each of its parents.
	ignored := func(path string) bool {
		for p := path; p != "."; p = filepath.Dir(p) {
			for _, pat := range patterns {
				if ok, _ := filepath.Match(strings.ReplaceAll(pat, "**/", ""), p); ok {
					return true
				}
				if ok, _ := filepath.Match(pat, p); ok {
					return true
				}
			}
		}
		return false
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/strata/main.go", "config/load.go", "engines/mmap/mmap.go"} {
		if ignored(keep) {
			t.Errorf(".dockerignore leaves %s out of the build context", keep)
		}
	}
	for _, drop := range []string{".git", "bin/strata", "strata", "bench.test"} {
		if !ignored(drop) {
			t.Errorf(".dockerignore keeps %s in the build context", drop)
		}
	}
}

// composeServices reads docker-compose.yml's services.
func composeServices(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(data))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return yamlMap(t, yamlMap(t, doc, "docker-compose.yml")["services"], "services")
}

// composeBrokers returns the services built from this repository: the
// brokers.
func composeBrokers(t *testing.T, services map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for name, s := range services {
		svc := yamlMap(t, s, "services."+name)
		if _, ok := svc["build"]; ok {
			out[name] = svc
		}
	}
	return out
}

// composeEnv returns a service's environment as KEY=VALUE, interpolated
// from shell as compose does; a variable with an empty value is left out,
// as compose passes it empty and the broker reads empty as unset.
func composeEnv(t *testing.T, service string, v any, shell map[string]string) []string {
	t.Helper()
	var env []string
	switch e := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(e)) {
			env = append(env, k+"="+yamlString(t, e[k], service+".environment."+k))
		}
	case []any:
		for i := range e {
			env = append(env, yamlString(t, e[i], service+".environment"))
		}
	default:
		t.Fatalf("%s: environment %v", service, v)
	}
	out := env[:0]
	for _, kv := range env {
		kv, err := interpolate(kv, shell)
		if err != nil {
			t.Fatalf("%s: %v", service, err)
		}
		if k, val, ok := strings.Cut(kv, "="); !ok {
			t.Fatalf("%s: environment entry %q takes its value from the shell; give it one", service, k)
		} else if val != "" {
			out = append(out, kv)
		}
	}
	return out
}

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate expands compose's $VAR, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$ from shell.
func interpolate(s string, shell map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		val, set := shell[name]
		switch op {
		case ":-":
			if val == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if !set || (op == ":?" && val == "") {
				err = fmt.Errorf("%s is required: %s", name, arg)
			}
		}
		return val
	})
	return out, err
}

// portMapping is one entry of ports: host ports hostLo..hostHi to a
// container port.
type portMapping struct {
	hostLo, hostHi, container int
}

func composePorts(t *testing.T, service string, v any) []portMapping {
	t.Helper()
	var out []portMapping
	for _, p := range yamlStrings(t, v, service+".ports") {
		p, _, _ = strings.Cut(p, "/") // /tcp
		parts := strings.Split(p, ":")
		if len(parts) < 2 {
			t.Fatalf("%s: port %q publishes on a random host port", service, p)
		}
		host, container := parts[len(parts)-2], parts[len(parts)-1]
		lo, hi, _ := strings.Cut(host, "-")
		if hi == "" {
			hi = lo
		}
		var m portMapping
		var errs [3]error
		m.hostLo, errs[0] = strconv.Atoi(lo)
		m.hostHi, errs[1] = strconv.Atoi(hi)
		m.container, errs[2] = strconv.Atoi(container)
		for _, err := range errs {
			if err != nil {
				t.Fatalf("%s: port %q: %v", service, p, err)
			}
		}
		out = append(out, m)
	}
	return out
}

// volumeTarget is where a short-syntax volume is mounted:
// [source:]target[:mode].
func volumeTarget(v string) string {
	parts := strings.Split(v, ":")
	if len(parts) >= 2 && strings.HasPrefix(parts[1], "/") {
		return parts[1]
	}
	return parts[0]
}

func dependsOn(t *testing.T, service string, v any) []string {
	t.Helper()
	switch d := v.(type) {
	case map[string]any:
		return slices.Sorted(maps.Keys(d))
	case nil:
		return nil
	}
	return yamlStrings(t, v, service+".depends_on")
}

// dockerInstructions are a Dockerfile's instructions in order: the
// upper-cased instruction and its arguments, continuation lines joined.
type dockerInstructions [][2]string

func dockerfile(t *testing.T) dockerInstructions {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out dockerInstructions
	var cont string
	for _, l := range strings.Split(string(data), "\n") {
		if s := strings.TrimSpace(l); s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		l = cont + strings.TrimSpace(l)
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cont = s + " "
			continue
		}
		cont = ""
		instr, args, _ := strings.Cut(l, " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(args)})
	}
	return out
}

// all returns the arguments of every instruction instr.
func (d dockerInstructions) all(instr string) []string {
	var out []string
	for _, in := range d {
		if in[0] == instr {
			out = append(out, in[1])
		}
	}
	return out
}

// args returns the words of every instruction instr (FROM's image, not
// its AS name; JSON arrays read as their elements).
func (d dockerInstructions) args(instr string) []string {
	var out []string
	for _, a := range d.all(instr) {
		var arr []string
		if json.Unmarshal([]byte(a), &arr) == nil {
			out = append(out, arr...)
			continue
		}
		f := strings.Fields(a)
		if instr == "FROM" {
			f = slices.DeleteFunc(f, func(w string) bool { return strings.HasPrefix(w, "--platform=") })[:1]
		}
		out = append(out, f...)
	}
	return out
}

// env returns the image's ENV as KEY=VALUE (only the KEY=VALUE form).
func (d dockerInstructions) env(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, a := range d.all("ENV") {
		for _, kv := range strings.Fields(a) {
			if !strings.Contains(kv, "=") || strings.ContainsAny(kv, `"'$`) {
				t.Fatalf("Dockerfile: ENV %s: write plain KEY=VALUE pairs", a)
			}
			env = append(env, kv)
		}
	}
	return env
}

func yamlMap(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %#v, want a mapping", what, v)
	}
	return m
}

// yamlString returns a scalar as compose reads it: as its text.
func yamlString(t *testing.T, v any, what string) string {
	t.Helper()
	switch s := v.(type) {
	case string:
		return s
	case int, bool, float64:
		return fmt.Sprint(s)
	}
	t.Fatalf("%s: %#v, want a scalar", what, v)
	return ""
}

func yamlStrings(t *testing.T, v any, what string) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: %#v, want a list", what, v)
	}
	out := make([]string, len(l))
	for i := range l {
		out[i] = yamlString(t, l[i], what)
	}
	return out
}

// parseYAML reads a YAML document as compose does: mappings as
// map[string]any, sequences as []any, scalars typed.
func parseYAML(src string) (any, error) {
	var v any
	err := yaml.Unmarshal([]byte(src), &v)
	return v, err
}
