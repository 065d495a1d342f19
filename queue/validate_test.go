package queue

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate_RefusesBadSpecsNamingTheField(t *testing.T) {
	ok := func() TaskSpec { return TaskSpec{Image: "alpine:3.20"} }
	for name, tc := range map[string]struct {
		mut   func(*TaskSpec)
		field string
	}{
		"missing image":     {func(s *TaskSpec) { s.Image = "" }, "image"},
		"image with spaces": {func(s *TaskSpec) { s.Image = "not an image" }, "image"},
		"upper-case image":  {func(s *TaskSpec) { s.Image = "Alpine" }, "image"},
		"image bad tag":     {func(s *TaskSpec) { s.Image = "alpine:-x" }, "image"},
		"negative cpu":      {func(s *TaskSpec) { s.Resources.CPUMillis = -1 }, "cpu"},
		"absurd cpu":        {func(s *TaskSpec) { s.Resources.CPUMillis = MaxCPUMillis + 1 }, "cpu"},
		"negative memory":   {func(s *TaskSpec) { s.Resources.MemoryBytes = -1 }, "memory"},
		"absurd memory":     {func(s *TaskSpec) { s.Resources.MemoryBytes = MaxMemoryBytes + 1 }, "memory"},
		"tiny memory":       {func(s *TaskSpec) { s.Resources.MemoryBytes = 1024 }, "memory"},
		"negative disk":     {func(s *TaskSpec) { s.Resources.DiskBytes = -1 }, "disk"},
		"bad name":          {func(s *TaskSpec) { s.Name = "a b" }, "name"},
		"long name":         {func(s *TaskSpec) { s.Name = strings.Repeat("a", MaxNameLen+1) }, "name"},
		"bad env key":       {func(s *TaskSpec) { s.Env = map[string]string{"1X": "v"} }, "env"},
		"bad policy":        {func(s *TaskSpec) { s.RestartPolicy = "sometimes" }, "restart_policy"},
		"negative restarts": {func(s *TaskSpec) { s.MaxRestarts = -1 }, "max_restarts"},
		"port zero":         {func(s *TaskSpec) { s.Ports = []Port{{ContainerPort: 0}} }, "ports"},
		"port too big":      {func(s *TaskSpec) { s.Ports = []Port{{ContainerPort: 80, HostPort: 70000}} }, "ports"},
		"bad network":       {func(s *TaskSpec) { s.Network = "overlay" }, "network"},
		"host net + ports":  {func(s *TaskSpec) { s.Network = "host"; s.Ports = []Port{{ContainerPort: 80}} }, "ports"},
		"bad protocol":      {func(s *TaskSpec) { s.Ports = []Port{{ContainerPort: 80, Protocol: "sctp"}} }, "ports"},
		"host port twice": {func(s *TaskSpec) {
			s.Ports = []Port{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81, HostPort: 8080}}
		}, "ports"},
		"huge command":                   {func(s *TaskSpec) { s.Command = []string{strings.Repeat("x", MaxCommandLen+1)} }, "command"},
		"stop after disconnect too soon": {func(s *TaskSpec) { s.StopAfterDisconnect = Duration(100 * time.Millisecond) }, "stop_after_disconnect"},
		"stop after disconnect negative": {func(s *TaskSpec) { s.StopAfterDisconnect = Duration(-time.Second) }, "stop_after_disconnect"},
		"stop after disconnect too late": {func(s *TaskSpec) { s.StopAfterDisconnect = Duration(2 * time.Hour) }, "stop_after_disconnect"},
	} {
		s := ok()
		tc.mut(&s)
		s.Normalize()
		err := s.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want a FieldError", name, err)
			continue
		}
		if fe.Field != tc.field || fe.Hint == "" {
			t.Errorf("%s: field %q hint %q, want field %q with a hint", name, fe.Field, fe.Hint, tc.field)
		}
	}
}

func TestValidate_AcceptsGoodSpecs(t *testing.T) {
	for _, s := range []TaskSpec{
		{Image: "alpine"},
		{Image: "registry.example.com:5000/team/app:1.2", Name: "web-1", Resources: Resources{500, 64 << 20, 1 << 30}},
		{Image: "alpine@sha256:" + strings.Repeat("a", 64), Ports: []Port{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 53, Protocol: "udp"}}},
		{Image: "alpine", RestartPolicy: RestartOnFailure, MaxRestarts: 3, Env: map[string]string{"A_B": "x=y"}},
	} {
		s.Normalize()
		if err := s.Validate(); err != nil {
			t.Errorf("%+v refused: %v", s, err)
		}
	}
}
