package queue

import (
	"errors"
	"testing"
)

func TestCheckTransition_AllowsTheLifeCycle(t *testing.T) {
	for _, tc := range [][2]State{
		{Pending, Scheduled}, {Scheduled, Starting}, {Starting, Running},
		{Running, Completed}, {Running, Failed}, {Running, Stopped},
		{Pending, Stopped}, {Scheduled, Stopped}, {Starting, Failed},
		{Running, Pending}, {Scheduled, Pending},
	} {
		if err := CheckTransition(tc[0], tc[1]); err != nil {
			t.Errorf("%s → %s refused: %v", tc[0], tc[1], err)
		}
	}
}

func TestCheckTransition_RefusesInvalidChanges(t *testing.T) {
	for _, tc := range [][2]State{
		{Pending, Running}, {Pending, Completed}, {Scheduled, Running}, {Scheduled, Completed},
		{Completed, Running}, {Completed, Pending}, {Failed, Running}, {Failed, Pending},
		{Stopped, Running}, {Running, Running}, {Pending, Pending}, {Running, Starting},
		{"bogus", Running}, {Running, "bogus"},
	} {
		err := CheckTransition(tc[0], tc[1])
		if !errors.Is(err, ErrInvalidTransition) {
			t.Errorf("%s → %s: got %v, want ErrInvalidTransition", tc[0], tc[1], err)
		}
	}
}

func TestTerminalStatesHaveNoWayOut(t *testing.T) {
	for _, from := range AllStates {
		if !from.Terminal() {
			continue
		}
		for _, to := range AllStates {
			if CanTransition(from, to) {
				t.Errorf("terminal %s may move to %s", from, to)
			}
		}
	}
}

func TestSources_MatchesTable(t *testing.T) {
	got := Sources(Scheduled)
	if len(got) != 2 || got[0] != Pending || got[1] != Running {
		t.Fatalf("Sources(scheduled) = %v, want [pending running]", got)
	}
	if len(Sources(Pending)) == 0 {
		t.Fatal("nothing may move to pending")
	}
}

func TestState_UnmarshalJSON_AcceptsSeedIntegers(t *testing.T) {
	for in, want := range map[string]State{`0`: Pending, `1`: Scheduled, `2`: Running, `3`: Completed, `4`: Failed, `"Running"`: Running} {
		var s State
		if err := s.UnmarshalJSON([]byte(in)); err != nil || s != want {
			t.Errorf("%s → %q, %v; want %q", in, s, err, want)
		}
	}
	var s State
	if err := s.UnmarshalJSON([]byte(`9`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("9 → %v, want ErrInvalid", err)
	}
}
