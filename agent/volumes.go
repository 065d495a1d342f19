package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/orchd/orch/queue"
)

// LabelVolume marks a Docker volume orch made for a task: its value is the
// volume's name. Volumes carry LabelNode as containers do.
const LabelVolume = "orch.volume"

// DefaultHostMountPrefix is where host paths must lie for an agent started
// with --allow-host-mounts, unless --host-mount-prefix says otherwise.
const DefaultHostMountPrefix = "/srv/orch"

// VolumeRemover is a Runtime that keeps named volumes: the agent removes
// one when a user deletes it (orch volume delete).
type VolumeRemover interface {
	// RemoveVolume removes the named volume, and first the containers of
	// node that still hold it (the coordinator refuses a deletion while a
	// live task mounts the volume: these belong to tasks that ended). One
	// that is gone is not an error; one that another container uses is.
	RemoveVolume(ctx context.Context, name, node string) error
}

// VolumeLister is a Runtime that can list the named volumes orch made on
// it for a node.
type VolumeLister interface {
	Volumes(ctx context.Context, node string) ([]string, error)
}

var (
	_ VolumeRemover = (*DockerRuntime)(nil)
	_ VolumeRemover = (*MemRuntime)(nil)
	_ VolumeLister  = (*DockerRuntime)(nil)
)

// hostMounts returns the task's mounts with its host paths resolved (their
// symbolic links followed, so that the engine binds what was checked), or
// refuses them unless the agent allows host mounts and every path lies
// below its prefix. A path that does not exist is left for the engine to
// refuse.
func (a *Agent) hostMounts(t *queue.Task) ([]queue.Mount, error) {
	if !t.HostMounts() {
		return t.Volumes, nil
	}
	if !a.opts.AllowHostMounts {
		return nil, fmt.Errorf("node %s does not allow host mounts (start its agent with --allow-host-mounts)", a.node.Name)
	}
	prefix := filepath.Clean(a.opts.HostMountPrefix)
	if real, err := filepath.EvalSymlinks(prefix); err == nil {
		prefix = real
	}
	out := make([]queue.Mount, len(t.Volumes))
	for i, m := range t.Volumes {
		out[i] = m
		if !m.HostPath() {
			continue
		}
		if real, err := filepath.EvalSymlinks(m.Source); err == nil {
			out[i].Source = real
		}
		p := out[i].Source
		if p != prefix && !strings.HasPrefix(p, prefix+"/") && prefix != "/" {
			return nil, fmt.Errorf("host path %s is not below %s, where node %s allows host mounts (--host-mount-prefix)", m.Source, prefix, a.node.Name)
		}
	}
	return out, nil
}

// syncVolumes reports the volumes the engine holds for this node that the
// database does not know of, then carries out deletions.
func (a *Agent) syncVolumes(ctx context.Context) error {
	if vl, ok := a.rt.(VolumeLister); ok {
		names, err := vl.Volumes(ctx, a.node.ID.String())
		if err != nil {
			return err
		}
		if err := a.store.ReportVolumes(ctx, a.node.ID, names); err != nil {
			return err
		}
	}
	return a.handleVolumeDeletes(ctx)
}

// handleVolumeDeletes removes the volumes of this node that users asked to
// delete, and forgets them in the database; one the engine will not remove
// yet (in use by a container that is going away, or one orch does not
// know of) keeps its row, with why, and is tried again at the next sync.
func (a *Agent) handleVolumeDeletes(ctx context.Context) error {
	names, err := a.store.VolumeDeletes(ctx, a.node.ID)
	if err != nil || len(names) == 0 {
		return err
	}
	vr, ok := a.rt.(VolumeRemover)
	for _, name := range names {
		var rmErr error
		if ok {
			rmErr = vr.RemoveVolume(ctx, name, a.node.ID.String())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rmErr != nil {
			a.log.Warn("removing a volume", "volume", name, "err", rmErr)
		} else {
			a.log.Info("volume removed", "volume", name)
		}
		if err := a.store.VolumeRemoved(ctx, a.node.ID, name, rmErr); err != nil {
			return err
		}
	}
	return nil
}

// dockerMounts translates the spec's volumes into Docker mounts.
func dockerMounts(spec ContainerSpec) []mount.Mount {
	var out []mount.Mount
	for _, m := range spec.Mounts {
		dm := mount.Mount{Type: mount.TypeVolume, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.HostPath() {
			dm.Type = mount.TypeBind
		}
		out = append(out, dm)
	}
	return out
}

// ensureVolumes creates the spec's named volumes that do not exist yet,
// labelled with their name and the node, so that they can be told apart
// from volumes orch did not make.
func (d *DockerRuntime) ensureVolumes(ctx context.Context, spec ContainerSpec) error {
	for _, m := range spec.Mounts {
		if m.HostPath() {
			continue
		}
		_, err := d.cli.VolumeInspect(ctx, m.Source)
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("inspect volume %s: %w", m.Source, err)
		}
		labels := map[string]string{LabelVolume: m.Source}
		if node := spec.Labels[LabelNode]; node != "" {
			labels[LabelNode] = node
		}
		if _, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: m.Source, Labels: labels}); err != nil {
			return fmt.Errorf("create volume %s: %w", m.Source, err)
		}
	}
	return nil
}

// RemoveVolume removes a named volume orch made, after the containers of
// node that hold it; it does not touch a volume without orch's label, nor a
// container without node's.
func (d *DockerRuntime) RemoveVolume(ctx context.Context, name, node string) error {
	v, err := d.cli.VolumeInspect(ctx, name)
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("docker: inspect volume %s: %w", name, err)
	case v.Labels[LabelVolume] != name:
		return fmt.Errorf("docker: volume %s was not made by orch (no %s label): not removing it", name, LabelVolume)
	}
	held, err := d.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("volume", name), filters.Arg("label", LabelNode+"="+node))})
	if err != nil {
		return fmt.Errorf("docker: list the containers of volume %s: %w", name, err)
	}
	for _, c := range held {
		if err := d.Remove(ctx, c.ID); err != nil {
			return err
		}
	}
	if err := d.cli.VolumeRemove(ctx, name, false); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove volume %s: %w", name, err)
	}
	return nil
}

// Volumes lists the names of the volumes orch made on this engine for node
// (all of them for an empty node).
func (d *DockerRuntime) Volumes(ctx context.Context, node string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("label", LabelVolume))
	if node != "" {
		f.Add("label", LabelNode+"="+node)
	}
	res, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: list volumes: %w", err)
	}
	out := make([]string, 0, len(res.Volumes))
	for _, v := range res.Volumes {
		out = append(out, v.Name)
	}
	return out, nil
}

// RemoveVolume does nothing: a MemRuntime keeps no volumes.
func (r *MemRuntime) RemoveVolume(ctx context.Context, name, node string) error { return nil }
