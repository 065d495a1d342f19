package coordinator

import (
	"net/http"

	"github.com/orchd/orch/queue"
)

// volumeRoutes adds named volumes: listing them, and deleting one (which
// its node's agent carries out; the answer is the request, 202).
func (c *Coordinator) volumeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /volumes", c.listVolumes)
	mux.HandleFunc("DELETE /volumes/{name}", c.deleteVolume)
}

func (c *Coordinator) listVolumes(w http.ResponseWriter, r *http.Request) {
	vs, err := c.store.ListVolumes(r.Context())
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if vs == nil {
		vs = []queue.Volume{}
	}
	writeJSON(w, http.StatusOK, vs)
}

func (c *Coordinator) deleteVolume(w http.ResponseWriter, r *http.Request) {
	v, err := c.store.RequestVolumeDelete(r.Context(), r.PathValue("name"))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, v)
}
