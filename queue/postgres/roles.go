package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// AgentRole is a database role that may act as one node and nothing else.
type AgentRole struct {
	Node        string `json:"node"`
	Role        string `json:"role"`
	Password    string `json:"password"`
	DatabaseURL string `json:"database_url"`
}

// agentGroupRole holds the agent privileges (sql/00005_agent_roles.sql).
const agentGroupRole = "orch_agent"

// agentRoleName is the role of the agent of node: derived from the name, so
// that issuing a token again rotates the password of the same role.
func agentRoleName(node string) string {
	h := sha256.Sum256([]byte(node))
	return "orch_agent_" + hex.EncodeToString(h[:8])
}

// AgentRoleLimits bound what a node's agent role may claim for its node when
// it registers (orch_register_node, 00011_agent_isolation.sql). A zero
// capacity keeps the bound already set, or, for a new role, lets the node's
// first registration set it.
type AgentRoleLimits struct {
	Capacity queue.Resources
	// AllowPrivileged lets the node run privileged and host-network
	// containers, when its agent also asks (--allow-privileged).
	AllowPrivileged bool
}

// CreateAgentRole makes (or, if it exists, gives a new password to) the
// database role for node's agent, records what it may claim for the node,
// and returns how the agent connects with it. The caller's role must be
// allowed to create roles.
func (s *Store) CreateAgentRole(ctx context.Context, node string, limits AgentRoleLimits) (AgentRole, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if node == "" {
		return AgentRole{}, queue.Invalid("node", "a node name is required", "give the name the agent registers with (--name)")
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return AgentRole{}, fmt.Errorf("reading randomness: %w", err)
	}
	r := AgentRole{Node: node, Role: agentRoleName(node), Password: hex.EncodeToString(secret)}
	ident := pgx.Identifier{r.Role}.Sanitize()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var group, exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1),
    EXISTS (SELECT FROM pg_roles WHERE rolname = $2)`, agentGroupRole, r.Role).Scan(&group, &exists); err != nil {
			return translate(err, "looking up roles")
		}
		if !group {
			return fmt.Errorf("%w: the database has no %s role: apply the migrations as a user who may create roles", queue.ErrForbidden, agentGroupRole)
		}
		// DDL takes no parameters; the name is quoted as an identifier and
		// the password is hex, which needs no escaping in a literal.
		verb := "CREATE"
		if exists {
			verb = "ALTER"
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN PASSWORD '%s'", verb, ident, r.Password)); err != nil {
			return translate(err, "creating the agent's role")
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", agentGroupRole, ident)); err != nil {
			return translate(err, "granting the agent's privileges")
		}
		bound := func(v int64) *int64 {
			if v <= 0 {
				return nil
			}
			return &v
		}
		c := limits.Capacity
		if _, err := tx.Exec(ctx, `INSERT INTO agent_roles (role_name, node_name, max_cpu_millis, max_memory_bytes, max_disk_bytes, allow_privileged)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (node_name) DO UPDATE SET role_name = EXCLUDED.role_name,
    max_cpu_millis = COALESCE(EXCLUDED.max_cpu_millis, agent_roles.max_cpu_millis),
    max_memory_bytes = COALESCE(EXCLUDED.max_memory_bytes, agent_roles.max_memory_bytes),
    max_disk_bytes = COALESCE(EXCLUDED.max_disk_bytes, agent_roles.max_disk_bytes),
    allow_privileged = EXCLUDED.allow_privileged`,
			r.Role, node, bound(c.CPUMillis), bound(c.MemoryBytes), bound(c.DiskBytes), limits.AllowPrivileged); err != nil {
			return translate(err, "recording the agent's role")
		}
		return nil
	})
	if err != nil {
		return AgentRole{}, err
	}
	r.DatabaseURL = s.urlFor(r.Role, r.Password)
	return r, nil
}

// DropAgentRole removes node's agent role: its agent can no longer connect.
func (s *Store) DropAgentRole(ctx context.Context, node string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	role := agentRoleName(node)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM agent_roles WHERE node_name = $1`, node); err != nil {
			return translate(err, "forgetting the agent's role")
		}
		if _, err := tx.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			return translate(err, "dropping the agent's role")
		}
		return nil
	})
}

// urlFor is this store's database URL with another user and password. It
// keeps every host of a multi-host URL and its target_session_attrs, so an
// agent given the URL follows a failover as the store does.
func (s *Store) urlFor(user, password string) string {
	cfg := s.pool.Config().ConnConfig
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Path: "/" + cfg.Database}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") { // a unix socket directory
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
	} else {
		hosts := []string{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
		// pgx lists each host once more per TLS mode it may try
		// (sslmode=prefer): once each is enough.
		for _, f := range cfg.Fallbacks {
			if h := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port))); !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
		u.Host = strings.Join(hosts, ",")
	}
	if cfg.TLSConfig == nil {
		q.Set("sslmode", "disable")
	}
	if m := targetSessionAttrs.FindStringSubmatch(s.pool.Config().ConnString()); m != nil {
		q.Set("target_session_attrs", m[1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// targetSessionAttrs finds the setting in a URL or a key=value string
// (pgx turns it into a function, which cannot be printed back).
var targetSessionAttrs = regexp.MustCompile(`target_session_attrs\s*=\s*'?([a-z-]+)`)
