package postgres

import (
	"context"
	"fmt"

	"github.com/orchd/orch/queue"
)

// RecordHostPorts records, for the lease's attempt, the host ports the
// engine chose for the task's published ports (report_job_endpoints reads
// them). It is fenced like every agent write, and repeating it is
// harmless.
func (s *Store) RecordHostPorts(ctx context.Context, l queue.Lease, ports []queue.Port) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if ports == nil {
		ports = []queue.Port{}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE tasks SET host_ports = $4, host_ports_attempt = $2
WHERE id = $1 AND attempt = $2 AND node_id = $3 AND state = 'running'`, l.TaskID, l.Attempt, l.NodeID, ports)
	if err != nil {
		return translate(err, fmt.Sprintf("recording host ports of task %s", l.TaskID))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("host ports of task %s attempt %d: %w", l.TaskID, l.Attempt, queue.ErrNotOwner)
	}
	return nil
}
