package queue

import (
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/google/uuid"
)

// RegistryCredential is what orch shows of a private registry's login: the
// server and the user, never the password. The database holds both sealed
// with the cluster's secrets key (package queue/secrets), and only the agent
// of a node that holds a task of an image from that server may read them.
type RegistryCredential struct {
	Server    string    `json:"server"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DockerHub is the registry of images whose name names none.
const DockerHub = "docker.io"

// NormalizeRegistry turns a registry as users write it (docker login's
// argument: a host[:port], perhaps with a scheme and a path, or Docker
// Hub's index URL) into the server name orch keys credentials by, the one
// ImageRegistry gives for the images it serves.
func NormalizeRegistry(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	s = strings.ToLower(s)
	switch s {
	case "":
		return "", Invalid("server", "a registry server is required", "give its host[:port], e.g. registry.example.com or 127.0.0.1:5000")
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return DockerHub, nil
	}
	if _, err := reference.ParseNormalizedNamed(s + "/x"); err != nil || strings.ContainsAny(s, "@ ") {
		return "", Invalid("server", fmt.Sprintf("%q is not a registry host[:port]", s), "give e.g. registry.example.com or 127.0.0.1:5000")
	}
	return s, nil
}

// ImageRegistry is the registry an image is pulled from: the first part of
// its name when that is a host (it has a dot or a port, or is localhost),
// else Docker Hub. orch_image_registry (sql/00041) is the same rule in SQL.
func ImageRegistry(image string) string {
	name, _, _ := strings.Cut(image, "@")
	first, rest, ok := strings.Cut(name, "/")
	if ok && rest != "" && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return strings.ToLower(first)
	}
	return DockerHub
}

// RegistrySealID is the additional data a registry's sealed login is bound
// to, so that the sealed blob of one server does not open as another's.
func RegistrySealID(server string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("orch-registry:"+server))
}
