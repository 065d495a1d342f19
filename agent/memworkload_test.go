package agent

import (
	"testing"
	"time"
)

func TestWorkloadBehavior_ReadsSleepAndExitLikeTheWorkload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		run  time.Duration
		code int
	}{
		{nil, time.Nanosecond, 0},
		{[]string{"-exit", "3"}, time.Nanosecond, 3},
		{[]string{"-sleep", "2s"}, 2 * time.Second, 0},
		{[]string{"-sleep=150ms", "-exit=7"}, 150 * time.Millisecond, 7},
		{[]string{"--sleep", "forever"}, 0, 0},
		{[]string{"-logs", "3", "-sleep", "1s", "-exit", "1"}, time.Second, 1},
		{[]string{"-sleep", "soon"}, time.Nanosecond, 0},
	} {
		run, code := WorkloadBehavior(ContainerSpec{Command: tc.args})
		if run != tc.run || code != tc.code {
			t.Errorf("%q: runs %v, exits %d; want %v, %d", tc.args, run, code, tc.run, tc.code)
		}
	}
}

func TestWorkloadBehavior_MemRuntimeContainerEndsWithTheCode(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	r := &MemRuntime{Behave: WorkloadBehavior}
	id, err := r.Start(ctx, ContainerSpec{Name: "w", Command: []string{"-sleep", "10ms", "-exit", "5"}})
	if err != nil {
		t.Fatal(err)
	}
	exit, err := r.Wait(ctx, id)
	if err != nil || exit.Code != 5 {
		t.Fatalf("Wait = %+v, %v; want code 5", exit, err)
	}
}
