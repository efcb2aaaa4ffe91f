package mesos

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/keyship/keyship/host/materialize"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// protoFields lists, for each message of mesos.proto that the fragments use,
// its fields by their JSON (proto) names and what each holds: another
// message, "enum:<Enum>", "bytes" or "string". Copied from
// include/mesos/v1/mesos.proto of apache/mesos (commit c1b42f79):
//
//	message TaskInfo      { ... optional CommandInfo command = 7; optional ContainerInfo container = 9; ... }
//	message CommandInfo   { ... optional Environment environment = 2; ... }
//	message Environment   { message Variable { required string name = 1; optional Type type = 3;
//	                          optional string value = 2; optional Secret secret = 4; }
//	                        repeated Variable variables = 1; }
//	message Secret        { enum Type { UNKNOWN = 0; REFERENCE = 1; VALUE = 2; }
//	                        message Reference { required string name = 1; optional string key = 2; }
//	                        message Value { required bytes data = 1; }
//	                        optional Type type = 1; optional Reference reference = 2; optional Value value = 3; }
//	message Volume        { enum Mode { RW = 1; RO = 2; } required Mode mode = 3;
//	                        required string container_path = 1; optional string host_path = 2;
//	                        message Source { enum Type { UNKNOWN = 0; DOCKER_VOLUME = 1; HOST_PATH = 4;
//	                                         SANDBOX_PATH = 2; SECRET = 3; CSI_VOLUME = 5; }
//	                                         optional Type type = 1; ... optional Secret secret = 4; ... }
//	                        optional Source source = 5; }
//	message ContainerInfo { enum Type { DOCKER = 1; MESOS = 2; } required Type type = 1;
//	                        repeated Volume volumes = 2; ... }
var protoFields = map[string]map[string]string{
	"TaskInfo":             {"command": "CommandInfo", "container": "ContainerInfo"},
	"CommandInfo":          {"environment": "Environment"},
	"Environment":          {"variables": "Environment.Variable"},
	"Environment.Variable": {"name": "string", "type": "enum:Environment.Variable.Type", "value": "string", "secret": "Secret"},
	"Secret":               {"type": "enum:Secret.Type", "reference": "Secret.Reference", "value": "Secret.Value"},
	"Secret.Reference":     {"name": "string", "key": "string"},
	"Secret.Value":         {"data": "bytes"},
	"Volume":               {"mode": "enum:Volume.Mode", "container_path": "string", "host_path": "string", "source": "Volume.Source"},
	"Volume.Source":        {"type": "enum:Volume.Source.Type", "secret": "Secret"},
	"ContainerInfo":        {"type": "enum:ContainerInfo.Type", "volumes": "Volume"},
}

// protoRequired are the required fields of those messages.
var protoRequired = map[string][]string{
	"Environment.Variable": {"name"},
	"Secret.Reference":     {"name"},
	"Secret.Value":         {"data"},
	"Volume":               {"mode", "container_path"},
	"ContainerInfo":        {"type"},
}

var protoEnums = map[string][]string{
	"Environment.Variable.Type": {"UNKNOWN", "VALUE", "SECRET"},
	"Secret.Type":               {"UNKNOWN", "REFERENCE", "VALUE"},
	"Volume.Mode":               {"RW", "RO"},
	"Volume.Source.Type":        {"UNKNOWN", "DOCKER_VOLUME", "HOST_PATH", "SANDBOX_PATH", "SECRET", "CSI_VOLUME"},
	"ContainerInfo.Type":        {"DOCKER", "MESOS"},
}

// marathonFields is the same for the Marathon app fragment
// (mesosphere/marathon docs/docs/secrets.md and its RAML: AppSecretVolume
// {containerPath, secret}, EnvVarSecret {secret}, SecretDef {source}).
var marathonFields = map[string]map[string]string{
	"App":             {"env": "map:EnvVarSecret", "container": "Container", "secrets": "map:SecretDef"},
	"Container":       {"type": "enum:EngineType", "volumes": "AppSecretVolume"},
	"AppSecretVolume": {"containerPath": "string", "secret": "string"},
	"EnvVarSecret":    {"secret": "string"},
	"SecretDef":       {"source": "string"},
}

var marathonEnums = map[string][]string{"EngineType": {"MESOS", "DOCKER"}}

// checkSchema walks a decoded JSON value as message msg and fails on any
// field, enum value or type the schema does not have.
func checkSchema(errorf func(string, ...any), where string, v any, msg string, fields map[string]map[string]string, enums map[string][]string) {
	if list, ok := v.([]any); ok {
		for i, e := range list {
			checkSchema(errorf, fmt.Sprintf("%s[%d]", where, i), e, msg, fields, enums)
		}
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		errorf("%s: %s must be a JSON object, got %T", where, msg, v)
		return
	}
	for _, req := range protoRequired[msg] {
		if _, ok := obj[req]; !ok {
			errorf("%s: required field %s.%s is missing", where, msg, req)
		}
	}
	for name, val := range obj {
		kind, known := fields[msg][name]
		at := where + "." + name
		switch {
		case !known:
			errorf("%s: %s has no field %q", at, msg, name)
		case kind == "string":
			if _, ok := val.(string); !ok {
				errorf("%s: want a string, got %T", at, val)
			}
		case kind == "bytes":
			s, ok := val.(string)
			if _, err := base64.StdEncoding.DecodeString(s); !ok || err != nil {
				errorf("%s: want base64 bytes, got %v", at, val)
			}
		case strings.HasPrefix(kind, "enum:"):
			if s, ok := val.(string); !ok || !slices.Contains(enums[kind[5:]], s) {
				errorf("%s: %v is not a value of %s", at, val, kind[5:])
			}
		case strings.HasPrefix(kind, "map:"):
			m, ok := val.(map[string]any)
			if !ok {
				errorf("%s: want an object, got %T", at, val)
				continue
			}
			for k, e := range m {
				checkSchema(errorf, at+"."+k, e, kind[4:], fields, enums)
			}
		default:
			checkSchema(errorf, at, val, kind, fields, enums)
		}
	}
	if msg == "Secret" {
		_, ref := obj["reference"]
		_, val := obj["value"]
		if ref == val || (ref && obj["type"] != SecretTypeReference) || (val && obj["type"] != SecretTypeValue) {
			errorf("%s: a Secret holds exactly one of reference and value, as its type says: %v", where, obj)
		}
	}
}

// testBundle is a Bundle with stand-in bytes: shipping does not look inside
// the stores.
func testBundle() *materialize.Bundle {
	return &materialize.Bundle{
		Files: []materialize.File{
			{Path: "keystore.jks", Role: materialize.RoleKeystore, Mode: 0o600, Contents: []byte("test keystore bytes"), Version: "ks-v1"},
			{Path: "truststore.jks", Role: materialize.RoleTruststore, Mode: 0o600, Contents: []byte("test truststore bytes"), Version: "ts-v1"},
			{Path: "ca-bundle.jks", Role: materialize.RoleCABundle, Mode: 0o600, Contents: []byte("test ca bundle bytes"), Version: "ca-v1"},
		},
		KeystorePassword:   []byte("test-ks-pw"),
		KeyPassword:        []byte("test-key-pw"),
		TruststorePassword: []byte("test-ts-pw"),
	}
}

// seed000Sources says that the keystore, truststore and CA bundle and their
// passwords are seed 000's DC/OS secrets, unchanged.
func seed000Sources() Sources {
	return Sources{
		Files: map[materialize.Role]Reference{
			materialize.RoleKeystore:   {Name: "/spark/keystore"},
			materialize.RoleTruststore: {Name: "/spark/truststore"},
			materialize.RoleCABundle:   {Name: "/spark/ca_bundle_truststore"},
		},
		KeystorePassword:   &Reference{Name: "/spark/keystore_password"},
		KeyPassword:        &Reference{Name: "/spark/key_password"},
		TruststorePassword: &Reference{Name: "/spark/truststore_password"},
	}
}

// mixedSources: keyship rebuilt the truststore (VALUE), the rest is
// unchanged, and the truststore password is a key of a JSON secret.
func mixedSources() Sources {
	s := seed000Sources()
	delete(s.Files, materialize.RoleTruststore)
	s.TruststorePassword = &Reference{Name: "/spark/passwords", Key: "truststore"}
	return s
}

// golden compares got, as indented JSON, with testdata/name, or rewrites it
// with -update; it returns the decoded JSON.
func golden(t *testing.T, name string, got any) any {
	t.Helper()
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	var gotV, wantV any
	if err := json.Unmarshal(data, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot\n%s\nwant\n%s", file, data, want)
	}
	return gotV
}

func TestTaskInfoGolden(t *testing.T) {
	for _, tt := range []struct {
		file string
		src  Sources
	}{
		{"taskinfo_value.json", Sources{}},
		{"taskinfo_reference.json", seed000Sources()},
		{"taskinfo_mixed.json", mixedSources()},
	} {
		t.Run(tt.file, func(t *testing.T) {
			p, err := NewPlan(testBundle(), ".keyship", tt.src)
			if err != nil {
				t.Fatal(err)
			}
			v := golden(t, tt.file, p.TaskInfo())
			checkSchema(t.Errorf, "TaskInfo", v, "TaskInfo", protoFields, protoEnums)

			// Field by field: one RO secret volume per file at its path in
			// the sandbox, one SECRET variable per password.
			ti := v.(map[string]any)
			vols := ti["container"].(map[string]any)["volumes"].([]any)
			if got := ti["container"].(map[string]any)["type"]; got != "MESOS" {
				t.Errorf("container.type = %v", got)
			}
			b := testBundle()
			if len(vols) != len(b.Files) {
				t.Fatalf("%d volumes for %d files", len(vols), len(b.Files))
			}
			for i, f := range b.Files {
				vol := vols[i].(map[string]any)
				if vol["mode"] != "RO" || vol["container_path"] != ".keyship/"+f.Path {
					t.Errorf("volume %d: %v", i, vol)
				}
				src := vol["source"].(map[string]any)
				checkSecret(t, src["secret"].(map[string]any), tt.src.Files, f.Role, f.Contents)
			}
			vars := ti["command"].(map[string]any)["environment"].(map[string]any)["variables"].([]any)
			pws := []struct {
				env string
				ref *Reference
				val []byte
			}{{EnvKeystorePassword, tt.src.KeystorePassword, b.KeystorePassword}, {EnvKeyPassword, tt.src.KeyPassword, b.KeyPassword},
				{EnvTruststorePassword, tt.src.TruststorePassword, b.TruststorePassword}}
			if len(vars) != len(pws) {
				t.Fatalf("%d variables", len(vars))
			}
			for i, pw := range pws {
				vr := vars[i].(map[string]any)
				if vr["name"] != pw.env || vr["type"] != "SECRET" {
					t.Errorf("variable %d: %v", i, vr)
				}
				m := map[materialize.Role]Reference{}
				if pw.ref != nil {
					m["pw"] = *pw.ref
				}
				checkSecret(t, vr["secret"].(map[string]any), m, "pw", pw.val)
			}
		})
	}
}

// checkSecret checks a decoded Secret against the reference refs[role], or
// the value want when there is none.
func checkSecret(t *testing.T, sec map[string]any, refs map[materialize.Role]Reference, role materialize.Role, want []byte) {
	t.Helper()
	if r, ok := refs[role]; ok {
		ref := sec["reference"].(map[string]any)
		if sec["type"] != "REFERENCE" || ref["name"] != r.Name || (r.Key != "" && ref["key"] != r.Key) || (r.Key == "" && ref["key"] != nil) || sec["value"] != nil {
			t.Errorf("%s: secret %v, want a reference to %+v", role, sec, r)
		}
		return
	}
	val, _ := sec["value"].(map[string]any)
	data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(val["data"]))
	if sec["type"] != "VALUE" || !bytes.Equal(data, want) || sec["reference"] != nil {
		t.Errorf("%s: secret %v, want the value %q", role, sec, want)
	}
}

func TestMarathonGolden(t *testing.T) {
	p, err := NewPlan(testBundle(), ".keyship", mixedSources())
	if err != nil {
		t.Fatal(err)
	}
	app, left := p.Marathon()
	v := golden(t, "marathon.json", app)
	checkSchema(t.Errorf, "app", v, "App", marathonFields, marathonEnums)

	// The truststore ships by value and the truststore password by a keyed
	// reference: Marathon can carry neither.
	var leftNames []string
	for _, it := range left {
		leftNames = append(leftNames, it.Path+it.Env)
	}
	if want := []string{".keyship/truststore.jks", EnvTruststorePassword}; !reflect.DeepEqual(leftNames, want) {
		t.Errorf("left out %v, want %v", leftNames, want)
	}
	// Every env and volume names a secret whose source is the item's
	// reference.
	sources := map[string]string{}
	for n, s := range app.Secrets {
		sources[n] = s.Source
	}
	if got := sources[app.Env[EnvKeystorePassword].Secret]; got != "/spark/keystore_password" {
		t.Errorf("keystore password from %q", got)
	}
	var paths []string
	for _, vol := range app.Container.Volumes {
		paths = append(paths, vol.ContainerPath+"<-"+sources[vol.Secret])
	}
	sort.Strings(paths)
	if want := []string{".keyship/ca-bundle.jks<-/spark/ca_bundle_truststore", ".keyship/keystore.jks<-/spark/keystore"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("volumes %v", paths)
	}

	// Items referring to the same secret share its name.
	src := seed000Sources()
	src.KeyPassword = &Reference{Name: "/spark/keystore_password"}
	p, _ = NewPlan(testBundle(), ".keyship", src)
	app, left = p.Marathon()
	if len(left) != 0 || len(app.Secrets) != 5 || app.Env[EnvKeyPassword] != app.Env[EnvKeystorePassword] {
		t.Errorf("shared secret: %+v, left %v", app, left)
	}
}

func TestNewPlanProblems(t *testing.T) {
	for _, tt := range []struct {
		name string
		dir  string
		src  Sources
		want string
	}{
		{"absolute dir", "/mnt/mesos/sandbox/.keyship", Sources{}, "must be relative"},
		{"dir with ..", "a/../../b", Sources{}, "must be clean"},
		{"dir ..", "..", Sources{}, `must not contain ".."`},
		{"unclean dir", ".keyship/", Sources{}, "must be clean"},
		{"unknown role", ".keyship", Sources{Files: map[materialize.Role]Reference{"key-pem": {Name: "/k"}}}, `file role "key-pem": the bundle has no such file`},
		{"empty name", ".keyship", Sources{KeyPassword: &Reference{Name: " "}}, "KEYSHIP_KEY_PASSWORD: a reference needs a name"},
	} {
		if _, err := NewPlan(testBundle(), tt.dir, tt.src); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewPlan error %v, want %q", tt.name, err, tt.want)
		}
	}
	b := testBundle()
	b.TruststorePassword = nil
	if _, err := NewPlan(b, "", Sources{TruststorePassword: &Reference{Name: "/p"}}); err == nil || !strings.Contains(err.Error(), "no such password") {
		t.Errorf("reference to a missing password: %v", err)
	}
	p, err := NewPlan(b, "", Sources{})
	if err != nil || len(p.Variables()) != 2 || p.Volumes()[0].ContainerPath != "keystore.jks" {
		t.Errorf("no truststore password, sandbox root: %+v, %v", p, err)
	}
	if _, err := NewPlan(nil, "", Sources{}); err == nil {
		t.Error("nil bundle")
	}
}

func TestByValueAndRedaction(t *testing.T) {
	b := testBundle()
	p, _ := NewPlan(b, ".keyship", seed000Sources())
	if p.ByValue() {
		t.Error("all references, yet ByValue")
	}
	p, _ = NewPlan(b, ".keyship", Sources{})
	if !p.ByValue() {
		t.Error("all values, yet not ByValue")
	}
	var logged strings.Builder
	ti := p.TaskInfo()
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "data", ti.Command.Environment.Variables[0].Secret.Value.Data)
	out := fmt.Sprintf("%v %+v %#v %v %+v", p, p.Items, ti, *ti.Container, ti.Command.Environment.Variables[0].Secret.Value) + logged.String()
	for _, secret := range []string{"test-ks-pw", "test keystore bytes", base64.StdEncoding.EncodeToString([]byte("test-ks-pw")),
		strings.Trim(fmt.Sprint([]byte("test-ks-pw")), "[]")} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q printed: %s", secret, out)
		}
	}
}

// TestSchemaCatchesWrongNames checks that checkSchema fails on what a
// fragment must not hold: Marathon's names in a Mesos Volume, an enum value
// mesos.proto has not, a secret with both reference and value, a missing
// required field.
func TestSchemaCatchesWrongNames(t *testing.T) {
	var wrong any
	_ = json.Unmarshal([]byte(`{"container": {"type": "MESOS", "volumes": [
		{"mode": "READ_ONLY", "containerPath": "a", "source": {"type": "SECRET",
			"secret": {"type": "VALUE", "value": {"data": "not base64!"}, "reference": {"name": "/x"}}}}]},
		"command": {"environment": {"variables": [{"type": "SECRET", "secret": {"type": "REFERENCE", "reference": {}}}]}}}`), &wrong)
	var got []string
	checkSchema(func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }, "TaskInfo", wrong, "TaskInfo", protoFields, protoEnums)
	for _, want := range []string{
		"required field Volume.container_path is missing",
		`Volume has no field "containerPath"`,
		"READ_ONLY is not a value of Volume.Mode",
		"want base64 bytes",
		"a Secret holds exactly one of reference and value",
		"required field Environment.Variable.name is missing",
		"required field Secret.Reference.name is missing",
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("checkSchema did not report %q; it reported:\n%s", want, strings.Join(got, "\n"))
		}
	}
}
