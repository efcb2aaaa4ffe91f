package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keyship/keyship/backends/file/filetest"
	hostv1 "github.com/keyship/keyship/proto/keyship/host/v1"
	"github.com/keyship/keyship/shipper/server"
)

// curlShip POSTs body as JSON to the API's Ship over mutual TLS with real
// curl and returns the HTTP status and the body.
func curlShip(t *testing.T, s *serving, m *mtls, certFile, keyFile, body string) (int, string, error) {
	t.Helper()
	curl := requirePeer(t, "curl")
	cmd := exec.Command(curl, "-sS", "--max-time", "30",
		"--cacert", m.caFile, "--cert", certFile, "--key", keyFile,
		"-H", "Content-Type: application/json", "--data-binary", "@-",
		"-w", "\n%{http_code}",
		"https://"+s.hostPort()+"/keyship.host.v1.ShipperService/Ship")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		return 0, string(out), err
	}
	text := string(out)
	i := strings.LastIndexByte(text, '\n')
	code := 0
	_ = json.Unmarshal([]byte(text[i+1:]), &code)
	return code, text[:i], nil
}

// TestCurlShipsLikeTheGoClient drives real curl with a client certificate
// against keyship serve on TCP: a JSON POST to Ship gets the answer the Go
// (gRPC) client gets for the same request, an error the same code and
// message, and a client certificate from another CA no answer at all.
func TestCurlShipsLikeTheGoClient(t *testing.T) {
	j := newJob(t)
	m := newMTLS(t)
	s := serveTLS(t, j, m)

	c, err := server.Dial(s.api, m.clientTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	req := &hostv1.ShipRequest{JobId: "curl-job", Spec: []byte(filetest.Spec),
		Tasks:   []*hostv1.Task{{Id: "driver", Role: "driver"}, {Id: "exec-1", Role: "executor"}},
		Targets: []hostv1.Target{hostv1.Target_TARGET_MESOS, hostv1.Target_TARGET_FILES}}
	want, err := c.Ship(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	// The JSON a JVM launcher writes by hand: proto3's JSON mapping
	// (lowerCamelCase names, bytes in base64, enums by name).
	body := `{"jobId": "curl-job", "spec": "` + base64.StdEncoding.EncodeToString([]byte(filetest.Spec)) + `",
	  "tasks": [{"id": "driver", "role": "driver"}, {"id": "exec-1", "role": "executor"}],
	  "targets": ["TARGET_MESOS", "TARGET_FILES"]}`
	code, out, err := curlShip(t, s, m, m.clientCert, m.clientKey, body)
	if err != nil || code != 200 {
		t.Fatalf("curl: HTTP %d, %v\n%.300s", code, err, out)
	}
	got := &hostv1.ShipResponse{}
	if err := protojson.Unmarshal([]byte(out), got); err != nil {
		t.Fatalf("curl's answer is not a ShipResponse: %v", err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("curl's JSON answer differs from the Go client's:\ncurl: %d files, %d tasks, %d settings\ngo:   %d files, %d tasks, %d settings",
			len(got.GetFiles()), len(got.GetTasks()), len(got.GetSettings()), len(want.GetFiles()), len(want.GetTasks()), len(want.GetSettings()))
	}
	if len(got.GetTasks()) != 2 || len(got.GetTasks()[1].GetVolumes()) == 0 || len(got.GetSettings()) == 0 {
		t.Errorf("curl's answer lacks the Mesos secrets or settings: %d tasks, %d settings", len(got.GetTasks()), len(got.GetSettings()))
	}

	// An error: the same code and message as gRPC's.
	bad := &hostv1.ShipRequest{JobId: "curl-bad", Spec: []byte(`{"security": {"tls": {"enabled": true}}}`), Tasks: req.Tasks}
	_, gerr := c.Ship(context.Background(), bad)
	st, _ := status.FromError(gerr)
	code, out, err = curlShip(t, s, m, m.clientCert, m.clientKey, `{"jobId": "curl-bad", "spec": "`+base64.StdEncoding.EncodeToString(bad.Spec)+`", "tasks": [{"id": "driver"}, {"id": "exec-1"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var cerr struct{ Code, Message string }
	if jerr := json.Unmarshal([]byte(out), &cerr); jerr != nil || code != 400 || cerr.Code != "invalid_argument" || cerr.Message != st.Message() || st.Message() == "" {
		t.Errorf("a bad spec: curl HTTP %d %+v (%v); gRPC %v %q", code, cerr, jerr, st.Code(), st.Message())
	}
	if !strings.Contains(cerr.Message, "keystore_secret") {
		t.Errorf("the error does not name the missing setting: %q", cerr.Message)
	}

	// A client certificate the server's CA did not sign: no answer.
	if code, out, err := curlShip(t, s, m, m.strangerCert, m.strangerKy, body); err == nil || code != 0 {
		t.Errorf("a client certificate from another CA got HTTP %d: %.200s", code, out)
	}
	if strings.Contains(s.stderr.String(), canary) {
		t.Error("keyship serve logged the keystore password")
	}
}
