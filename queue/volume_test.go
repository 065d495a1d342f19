package queue

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseMount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Mount
		bad  bool
	}{
		{in: "data:/data", want: Mount{Source: "data", Target: "/data"}},
		{in: "data:/data:ro", want: Mount{Source: "data", Target: "/data", ReadOnly: true}},
		{in: "data:/data:rw", want: Mount{Source: "data", Target: "/data"}},
		{in: "/srv/orch/x:/x", want: Mount{Source: "/srv/orch/x", Target: "/x"}},
		{in: "data", bad: true},
		{in: "data:/data:rx", bad: true},
		{in: "a:b:c:d", bad: true},
	} {
		got, err := ParseMount(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%q: %v, want invalid", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestTaskSpec_ValidateVolumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vols []Mount
		ok   bool
	}{
		{"named", []Mount{{Source: "pg-data_1.x", Target: "/var/lib/pg"}}, true},
		{"host path", []Mount{{Source: "/srv/orch/a", Target: "/a", ReadOnly: true}}, true},
		{"bad name", []Mount{{Source: "-x", Target: "/a"}}, false},
		{"one letter", []Mount{{Source: "x", Target: "/a"}}, false},
		{"relative target", []Mount{{Source: "data", Target: "a"}}, false},
		{"root target", []Mount{{Source: "data", Target: "/"}}, false},
		{"unclean target", []Mount{{Source: "data", Target: "/a/../b"}}, false},
		{"unclean host path", []Mount{{Source: "/srv/orch/../../etc", Target: "/a"}}, false},
		{"comma", []Mount{{Source: "/srv/a,b", Target: "/a"}}, false},
		{"target twice", []Mount{{Source: "a1", Target: "/a"}, {Source: "b1", Target: "/a"}}, false},
	} {
		s := TaskSpec{Image: "alpine", Volumes: tc.vols}
		s.Normalize()
		err := s.Validate()
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v, want ok %t", tc.name, err, tc.ok)
		}
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "volumes") {
			t.Errorf("%s: %v, want a volumes field error", tc.name, err)
		}
	}
}

func TestMount_UnmarshalJSONTakesStringsAndObjects(t *testing.T) {
	t.Parallel()
	var ms []Mount
	if err := json.Unmarshal([]byte(`["data:/data:ro", {"source": "x1", "target": "/x"}]`), &ms); err != nil {
		t.Fatal(err)
	}
	want := []Mount{{Source: "data", Target: "/data", ReadOnly: true}, {Source: "x1", Target: "/x"}}
	if len(ms) != 2 || ms[0] != want[0] || ms[1] != want[1] {
		t.Errorf("got %+v, want %+v", ms, want)
	}
	if err := json.Unmarshal([]byte(`[{"source": "x1", "target": "/x", "mode": "ro"}]`), &ms); err == nil {
		t.Error("an unknown field was accepted")
	}
}

func TestImageRegistry(t *testing.T) {
	t.Parallel()
	for img, want := range map[string]string{
		"alpine": "docker.io", "team/app:1": "docker.io", "docker.io/library/alpine": "docker.io",
		"reg.example.com/app": "reg.example.com", "127.0.0.1:5000/w:x": "127.0.0.1:5000", "localhost/app": "localhost",
	} {
		if got := ImageRegistry(img); got != want {
			t.Errorf("%s: %q, want %q", img, got, want)
		}
	}
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "docker.io", "http://127.0.0.1:5000/": "127.0.0.1:5000", "Reg.Example.com": "reg.example.com",
	} {
		if got, err := NormalizeRegistry(in); err != nil || got != want {
			t.Errorf("NormalizeRegistry(%q): %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "x@y"} {
		if _, err := NormalizeRegistry(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeRegistry(%q): %v, want invalid", bad, err)
		}
	}
}
