package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every environment variable: --database-url is ORCH_DATABASE_URL.
const EnvPrefix = "ORCH"

// Common settings' keys, shared by several commands.
const (
	KeyConfig      = "config"
	KeyDatabaseURL = "database-url"
	KeyAddr        = "addr"
	KeyOutput      = "output"
	KeyToken       = "token"
)

// DefaultAddr is where the CLI finds a coordinator when told nothing else.
const DefaultAddr = "http://127.0.0.1:8989"

// DefaultFile is the config file read when --config / ORCH_CONFIG is not given.
func DefaultFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "orch", "config.yaml")
}

// DefaultTokenFile is where `orch dev` stores the admin token it creates and
// where the CLI looks for a token when none is given otherwise.
func DefaultTokenFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "orch", "token")
}

// Load builds a viper view over flags (all of a command's flags, local and
// inherited), the environment and the config file. A config file named
// explicitly must exist; the default one may be absent.
func Load(flags *pflag.FlagSet) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(flags); err != nil {
		return nil, fmt.Errorf("binding flags: %w", err)
	}
	file := v.GetString(KeyConfig)
	explicit := file != ""
	if !explicit {
		file = DefaultFile()
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			var notFound viper.ConfigFileNotFoundError
			missing := errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
			if explicit || !missing {
				return nil, fmt.Errorf("reading config file %s: %w", file, err)
			}
		}
	}
	return v, nil
}

// Coordinator is the configuration of `orch coordinator`.
type Coordinator struct {
	DatabaseURL     string        `mapstructure:"database-url"`
	Listen          string        `mapstructure:"listen"`
	NoMigrate       bool          `mapstructure:"no-migrate"`
	Strategy        string        `mapstructure:"strategy"`
	PassInterval    time.Duration `mapstructure:"pass-interval"`
	Batch           int           `mapstructure:"batch"`
	NodeDownTimeout time.Duration `mapstructure:"node-down-timeout"`
	MaxHeartbeats   float64       `mapstructure:"max-heartbeats-per-second"` // a second, for the whole cluster; 0: no limit
	// MaxHeartbeatInterval bounds the interval the limit asks of agents.
	MaxHeartbeatInterval time.Duration `mapstructure:"max-heartbeat-interval"`
	AdminTokens          []string      `mapstructure:"admin-token"`
	WriteTokens          []string      `mapstructure:"write-token"`
	ReadTokens           []string      `mapstructure:"read-token"`
	Insecure             bool          `mapstructure:"insecure"`
	TLSCert              string        `mapstructure:"tls-cert"`
	TLSKey               string        `mapstructure:"tls-key"`
	SecretsKeyFile       string        `mapstructure:"secrets-key-file"`
	// DatabasePooler says the database URL goes through a transaction
	// pooler; ListenDatabaseURL is then a direct one for LISTEN.
	DatabasePooler    string        `mapstructure:"database-pooler"`
	ListenDatabaseURL string        `mapstructure:"listen-database-url"`
	Retention         time.Duration `mapstructure:"retention"`
	StatsRetention    time.Duration `mapstructure:"stats-retention"`
	// MetricsListen serves /metrics without a token on a second address.
	MetricsListen string `mapstructure:"metrics-listen"`
}

// Agent is the configuration of `orch agent`.
type Agent struct {
	DatabaseURL string   `mapstructure:"database-url"`
	Name        string   `mapstructure:"name"`
	CPU         string   `mapstructure:"cpu"`
	Memory      string   `mapstructure:"memory"`
	Disk        string   `mapstructure:"disk"`
	Labels      []string `mapstructure:"label"`
	// Datacenter is the node's dc label, which jobs' datacenters match;
	// Address is how others reach the node (report_job_endpoints).
	Datacenter        string        `mapstructure:"datacenter"`
	Address           string        `mapstructure:"address"`
	HeartbeatInterval time.Duration `mapstructure:"heartbeat-interval"`
	PollInterval      time.Duration `mapstructure:"poll-interval"`
	StopGrace         time.Duration `mapstructure:"stop-grace"`
	// Observability (issue 5): stats, logs and the optional metrics listener.
	StatsInterval       time.Duration `mapstructure:"stats-interval"`
	StatsRetention      time.Duration `mapstructure:"stats-retention"`
	LogMaxLines         int64         `mapstructure:"log-max-lines"`
	LogMaxBytes         string        `mapstructure:"log-max-bytes"`
	MetricsListen       string        `mapstructure:"metrics-listen"`
	RestartBackoff      time.Duration `mapstructure:"restart-backoff"`
	RestartBackoffMax   time.Duration `mapstructure:"restart-backoff-max"`
	RestartBackoffReset time.Duration `mapstructure:"restart-backoff-reset"`
	ReconcileInterval   time.Duration `mapstructure:"reconcile-interval"`
	AllowPrivileged     bool          `mapstructure:"allow-privileged"`
	AllowHostMounts     bool          `mapstructure:"allow-host-mounts"`
	HostMountPrefix     string        `mapstructure:"host-mount-prefix"`
	ParallelStarts      int           `mapstructure:"parallel-starts"`
	IdlePollInterval    time.Duration `mapstructure:"idle-poll-interval"`
	Runtime             string        `mapstructure:"runtime"`
	SecretsKeyFile      string        `mapstructure:"secrets-key-file"`
	// DatabasePooler and Coordinators: an agent behind a transaction
	// pooler long-polls the coordinators for wake-ups, with Token.
	DatabasePooler string   `mapstructure:"database-pooler"`
	Coordinators   []string `mapstructure:"coordinator"`
	Token          string   `mapstructure:"token"`
	// Container limits (agent/limits.go).
	PidsLimit            int64  `mapstructure:"pids-limit"`
	ContainerLogMaxSize  string `mapstructure:"container-log-max-size"`
	ContainerLogMaxFiles int    `mapstructure:"container-log-max-files"`
}

// Client is what every CLI command that talks to a coordinator needs.
type Client struct {
	Addr   string `mapstructure:"addr"`
	Output string `mapstructure:"output"`
	Token  string `mapstructure:"token"`
	CACert string `mapstructure:"ca-cert"`
}

// ResolveToken fills Token from DefaultTokenFile when no flag, environment
// variable or config file gave one.
func (c *Client) ResolveToken() error {
	if c.Token != "" {
		return nil
	}
	path := DefaultTokenFile()
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading token file %s: %w", path, err)
	}
	c.Token = strings.TrimSpace(string(b))
	return nil
}

// Decode fills out from v.
func Decode(v *viper.Viper, out any) error {
	if err := v.Unmarshal(out); err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	return nil
}
