package coordinator

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/orchd/orch/queue"
)

// RegistryLogin is the body of PUT /registries/{server}: a private
// registry's login, which agents use to pull its images. The password is
// write-only: it is sealed with the cluster's secrets key at once, and no
// answer, log line or event holds it.
type RegistryLogin struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// MaxRegistryPassword bounds a registry password (or token).
const MaxRegistryPassword = 16 << 10

// registryRoutes adds private registries' logins: storing one (admin),
// listing them (server and user only) and forgetting one (admin).
func (c *Coordinator) registryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /registries/{server}", c.putRegistry)
	mux.HandleFunc("GET /registries", listed(c, c.store.ListRegistryCredentials))
	mux.HandleFunc("DELETE /registries/{server}", c.deleteRegistry)
}

func (c *Coordinator) putRegistry(w http.ResponseWriter, r *http.Request) {
	server, err := queue.NormalizeRegistry(r.PathValue("server"))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	var login RegistryLogin
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	// The decoder's own messages may quote the body, and so the password.
	if err := dec.Decode(&login); err != nil {
		c.writeError(w, r, queue.Invalid("body", "not a JSON object of username and password", `send {"username": "...", "password": "..."}`))
		return
	}
	switch {
	case strings.TrimSpace(login.Username) == "" || strings.ContainsAny(login.Username, ":\n\x00"):
		c.writeError(w, r, queue.Invalid("username", "a username without ':' or line breaks is required", "give the registry user"))
		return
	case login.Password == "":
		c.writeError(w, r, queue.Invalid("password", "a password is required", "pass it on stdin: orch registry login SERVER --username USER --password-stdin"))
		return
	case len(login.Password) > MaxRegistryPassword:
		c.writeError(w, r, queue.Invalid("password", "the password is too long", "give the registry password or token"))
		return
	case c.opts.SecretsKey == nil:
		c.writeError(w, r, queue.Invalid("password", "this cluster keeps no secrets: its coordinators have no secrets key",
			"start the coordinators and agents with --secrets-key-file (orch dev makes one)"))
		return
	}
	sealed, err := c.opts.SecretsKey.Seal(queue.RegistrySealID(server), map[string]string{"username": login.Username, "password": login.Password})
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	cred, err := c.store.PutRegistryCredential(r.Context(), server, login.Username, sealed)
	c.reply(w, r, http.StatusOK, cred, err)
}

func (c *Coordinator) deleteRegistry(w http.ResponseWriter, r *http.Request) {
	server, err := queue.NormalizeRegistry(r.PathValue("server"))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	cred, err := c.store.DeleteRegistryCredential(r.Context(), server)
	c.reply(w, r, http.StatusOK, cred, err)
}
