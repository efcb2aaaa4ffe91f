package spec

import (
	"reflect"
	"strings"
	"testing"
)

func TestNewRequest(t *testing.T) {
	s, err := ParseDCOS([]byte(seed000))
	if err != nil {
		t.Fatal(err)
	}
	req, err := NewRequest("spark-job-1", s, []Task{
		{ID: "driver", Role: RoleDriver, Hosts: []string{"Node1.Example.com.", "10.0.0.1"}},
		{ID: "exec-1", Role: RoleExecutor, Hosts: []string{"node2.example.com", "node1.example.com", "::ffff:10.0.0.2"}},
		{ID: "exec-2", Role: RoleExecutor},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1", "10.0.0.2", "node1.example.com", "node2.example.com"}
	if !reflect.DeepEqual(req.Spec.Hosts, want) {
		t.Errorf("Spec.Hosts = %v, want %v", req.Spec.Hosts, want)
	}
	if s.Hosts != nil {
		t.Errorf("NewRequest changed the caller's Spec: %v", s.Hosts)
	}
	if got := req.Tasks[0].Hosts; !reflect.DeepEqual(got, []string{"node1.example.com", "10.0.0.1"}) {
		t.Errorf("task hosts %v", got)
	}
	if req.JobID != "spark-job-1" || len(req.Tasks) != 3 || req.Tasks[2].Hosts != nil {
		t.Errorf("request %+v", req)
	}

	given := *s
	given.Hosts = []string{"checked.example.com"}
	req, err = NewRequest("j", &given, []Task{{ID: "t", Role: RoleComponent, Hosts: []string{"other.example.com"}}})
	if err != nil || !reflect.DeepEqual(req.Spec.Hosts, []string{"checked.example.com"}) {
		t.Errorf("given hosts: %v, %v", req, err)
	}
	if req, err = NewRequest("cli", s, nil); err != nil || len(req.Spec.Hosts) != 0 {
		t.Errorf("no tasks: %v, %v", req, err)
	}
}

func TestNewRequestProblems(t *testing.T) {
	s := &Spec{}
	_, err := NewRequest(strings.Repeat("j", MaxJobIDLen+1), s, []Task{
		{ID: "a", Role: "worker", Hosts: []string{"ok.example.com", "bad_host!", ""}},
		{ID: "a", Role: RoleTaskManager, Hosts: []string{"fe80::1%eth0", "-x.example.com"}},
		{Role: ""},
	})
	checkProblems(t, err,
		problem{"job_id", "", "longer than 256 bytes"},
		problem{"tasks[0].role", "", `role "worker" is not one of driver, executor, jobmanager, taskmanager, component`},
		problem{"tasks[0].hosts[1]", "", `"bad_host!" is not a host name`},
		problem{"tasks[0].hosts[2]", "", "empty host name"},
		problem{"tasks[1].id", "", `"a" is also the id of tasks[0]`},
		problem{"tasks[1].hosts[0]", "", "zone"},
		problem{"tasks[1].hosts[1]", "", "is not a host name"},
		problem{"tasks[2].id", "", "required"},
		problem{"tasks[2].role", "", "required"},
	)
	_, err = NewRequest("", nil, nil)
	checkProblems(t, err, problem{"job_id", "", "required"}, problem{"spec", "", "required"})
	_, err = NewRequest("a\nb", s, nil)
	checkProblems(t, err, problem{"job_id", "", "control character"})
}
