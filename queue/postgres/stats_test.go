package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestStore_ReportUsage_LatestOnNodeAndHistoryWithinRetention(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	threeSamplesAfterAnOldOne(t, s, node.ID, func(u queue.Usage) error { return s.ReportUsage(ctx, node.ID, u) })
	n, err := s.GetNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if n.Usage.CPUPercent != 30 || n.Usage.Load1 != 1.5 || n.Usage.MemoryUsedBytes != 3<<30 || n.Usage.DiskUsedBytes != 3<<20 || n.Usage.At == nil {
		t.Errorf("node usage = %+v, want the third sample", n.Usage)
	}
	hist, err := s.NodeStats(ctx, node.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history has %d rows, want the 3 recent ones (the old one pruned): %+v", len(hist), hist)
	}
	if h := hist[0]; h.CPUPercent != 30 || h.MemoryTotalBytes != 8<<30 || h.DiskTotalBytes != 100<<30 {
		t.Errorf("newest sample = %+v", h)
	}
	if hist[2].CPUPercent != 10 {
		t.Errorf("oldest kept sample = %+v, want cpu 10", hist[2])
	}
	if err := s.ReportUsage(ctx, uuid.New(), queue.Usage{}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("usage of an unknown node: %v, want ErrNotFound", err)
	}
}

func TestStore_ReportTaskUsage_OnlyForTheRunningLease(t *testing.T) {
	s, ctx := newStore(t)
	n1, n2, task, l := runningOnOneOfTwo(t, s)

	good := queue.TaskUsage{TaskID: task.ID, Attempt: l.Attempt, CPUPercent: 42.5, MemoryUsedBytes: 64 << 20, MemoryLimitBytes: 128 << 20}
	staleAttempt := good
	staleAttempt.Attempt++
	staleAttempt.CPUPercent = 99
	n, err := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{good, {TaskID: uuid.New(), Attempt: 1}})
	if err != nil || n != 1 {
		t.Fatalf("report = %d, %v; want 1 sample counted", n, err)
	}
	if n, err := s.ReportTaskUsage(ctx, n2.ID, []queue.TaskUsage{good}); err != nil || n != 0 {
		t.Errorf("another node's report counted %d, %v", n, err)
	}
	if n, err := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{staleAttempt}); err != nil || n != 0 {
		t.Errorf("a stale attempt's report counted %d, %v", n, err)
	}
	u, err := s.TaskUsage(ctx, task.ID)
	if err != nil || u == nil || u.CPUPercent != 42.5 || u.MemoryUsedBytes != 64<<20 || u.MemoryLimitBytes != 128<<20 {
		t.Fatalf("latest usage = %+v, %v", u, err)
	}
	hist, err := s.TaskStats(ctx, task.ID, 10)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if _, err := s.RecordExit(ctx, l, ExitReport{Code: 0}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{good}); n != 0 {
		t.Errorf("a report after the task ended counted")
	}
}

func TestStore_Beat_WithUsage_LatestOnNodeAndHistoryWithinRetention(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	threeSamplesAfterAnOldOne(t, s, node.ID, func(u queue.Usage) error {
		_, err := s.Beat(ctx, node.ID, NodeHealth{Usage: &u}, time.Second)
		return err
	})
	// A beat without a sample leaves the figures and the history alone.
	before, err := s.GetNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Beat(ctx, node.ID, NodeHealth{}, time.Second); err != nil {
		t.Fatal(err)
	}
	n, err := s.GetNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if n.Usage.CPUPercent != 30 || n.Usage.Load1 != 1.5 || n.Usage.MemoryUsedBytes != 3<<30 || n.Usage.DiskUsedBytes != 3<<20 || n.Usage.At == nil {
		t.Errorf("node usage = %+v, want the third sample", n.Usage)
	}
	if !n.Usage.At.Equal(*before.Usage.At) {
		t.Errorf("usage stamped %v after a beat without a sample, was %v", n.Usage.At, before.Usage.At)
	}
	if !n.LastHeartbeat.After(*n.Usage.At) {
		t.Errorf("last heartbeat %v not after the last sample %v", n.LastHeartbeat, n.Usage.At)
	}
	hist, err := s.NodeStats(ctx, node.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history has %d rows, want the 3 recent ones (the old one pruned): %+v", len(hist), hist)
	}
	if h := hist[0]; h.CPUPercent != 30 || h.MemoryTotalBytes != 8<<30 || h.DiskTotalBytes != 100<<30 || !h.At.Equal(*n.Usage.At) {
		t.Errorf("newest sample = %+v, want the third, stamped as the node's usage (%v)", h, n.Usage.At)
	}
	if hist[2].CPUPercent != 10 {
		t.Errorf("oldest kept sample = %+v, want cpu 10", hist[2])
	}
	u := queue.Usage{CPUPercent: 5}
	if _, err := s.Beat(ctx, uuid.New(), NodeHealth{Usage: &u}, time.Second); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("beat with usage of an unknown node: %v, want ErrNotFound", err)
	}
}
