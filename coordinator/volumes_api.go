package coordinator

import (
	"net/http"
)

// volumeRoutes adds named volumes: listing them, and deleting one (which
// its node's agent carries out; the answer is the request, 202).
func (c *Coordinator) volumeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /volumes", listed(c, c.store.ListVolumes))
	mux.HandleFunc("DELETE /volumes/{name}", named(c, http.StatusAccepted, "name", c.store.RequestVolumeDelete))
}
