package queue

import (
	"testing"
	"time"
)

func TestBackoff_Delay_DoublesUpToTheCap(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 10 * time.Second}
	for restarts, want := range []time.Duration{1, 2, 4, 8, 10, 10, 10} {
		if got := b.Delay(restarts); got != want*time.Second {
			t.Errorf("Delay(%d) = %s, want %s", restarts, got, want*time.Second)
		}
	}
	if got := b.Delay(1 << 30); got != 10*time.Second {
		t.Errorf("Delay(huge) = %s, want the cap", got)
	}
	if got := (Backoff{}).Delay(0); got != DefaultBackoff.Base {
		t.Errorf("zero Backoff uses %s, want the default base %s", got, DefaultBackoff.Base)
	}
	if got := (Backoff{Base: time.Minute, Max: time.Second}).Delay(3); got != time.Minute {
		t.Errorf("a cap below the base: %s, want the base", got)
	}
}

func TestTask_ShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		policy             RestartPolicy
		max, restarts      int
		desired            DesiredState
		failed, wantResult bool
	}{
		{RestartNever, 0, 0, DesiredRunning, true, false},
		{RestartNever, 5, 0, DesiredRunning, false, false},
		{RestartOnFailure, 0, 0, DesiredRunning, false, false},
		{RestartOnFailure, 0, 100, DesiredRunning, true, true}, // 0: no limit
		{RestartOnFailure, 3, 2, DesiredRunning, true, true},
		{RestartOnFailure, 3, 3, DesiredRunning, true, false},
		{RestartAlways, 0, 0, DesiredRunning, false, true},
		{RestartAlways, 1, 1, DesiredRunning, false, false},
		{RestartAlways, 0, 0, DesiredStopped, true, false},
	} {
		tk := Task{TaskSpec: TaskSpec{RestartPolicy: tc.policy, MaxRestarts: tc.max}, Restarts: tc.restarts, DesiredState: tc.desired}
		if got := tk.ShouldRestart(tc.failed); got != tc.wantResult {
			t.Errorf("%s max %d after %d restarts, desired %s, failed %v: restart = %v, want %v",
				tc.policy, tc.max, tc.restarts, tc.desired, tc.failed, got, tc.wantResult)
		}
	}
}

func TestTask_RestartReason(t *testing.T) {
	tk := Task{TaskSpec: TaskSpec{RestartPolicy: RestartOnFailure, MaxRestarts: 5}, Restarts: 1}
	if got, want := tk.RestartReason("exited with code 1", 2*time.Second), "exited with code 1; restart 2 of 5 (on-failure) in 2s"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	tk.MaxRestarts = 0
	if got, want := tk.RestartReason("x", time.Second), "x; restart 2 (on-failure, no limit) in 1s"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}
