package queue

import (
	"time"

	"github.com/google/uuid"
)

// NodeSample is one row of a node's usage history.
type NodeSample struct {
	At               time.Time `json:"at"`
	CPUPercent       float64   `json:"cpu_percent"`
	Load1            float64   `json:"load1"`
	MemoryUsedBytes  int64     `json:"memory_used_bytes"`
	MemoryTotalBytes int64     `json:"memory_total_bytes"`
	DiskUsedBytes    int64     `json:"disk_used_bytes"`
	DiskTotalBytes   int64     `json:"disk_total_bytes"`
}

// TaskUsage is what an agent measured of one attempt of a task's container.
type TaskUsage struct {
	TaskID  uuid.UUID `json:"task_id"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// CPUPercent is in percent of one core, as `docker stats` shows it: a
	// task using one and a half cores reads 150.
	CPUPercent       float64 `json:"cpu_percent"`
	MemoryUsedBytes  int64   `json:"memory_used_bytes"`
	MemoryLimitBytes int64   `json:"memory_limit_bytes"`
}
