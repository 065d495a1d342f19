package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

func flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String(KeyConfig, "", "")
	fs.String(KeyDatabaseURL, "default-url", "")
	fs.String("listen", ":8989", "")
	return fs
}

// TestLoad_FlagsOverEnvOverFileOverDefaults checks flags > ORCH_* env > config file > defaults.
func TestLoad_FlagsOverEnvOverFileOverDefaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "orch.yaml")
	if err := os.WriteFile(file, []byte("database-url: from-file\nlisten: :1111\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("ORCH_CONFIG", file)

	fs := flags()
	v, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetString(KeyDatabaseURL); got != "from-file" {
		t.Errorf("file over default: %q", got)
	}

	t.Setenv("ORCH_DATABASE_URL", "from-env")
	v, _ = Load(flags())
	if got := v.GetString(KeyDatabaseURL); got != "from-env" {
		t.Errorf("env over file: %q", got)
	}
	if got := v.GetString("listen"); got != ":1111" {
		t.Errorf("file still applies where env is silent: %q", got)
	}

	fs = flags()
	_ = fs.Parse([]string{"--database-url", "from-flag"})
	v, _ = Load(fs)
	if got := v.GetString(KeyDatabaseURL); got != "from-flag" {
		t.Errorf("flag over env: %q", got)
	}
}

func TestLoad_MissingDefaultFileIsFine_MissingNamedFileIsNot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "nothing-here"))
	t.Setenv("ORCH_CONFIG", "")
	if _, err := Load(flags()); err != nil {
		t.Errorf("an absent default config file is fine: %v", err)
	}
	// A default path whose parent is a file is just as absent.
	blocker := filepath.Join(dir, "file")
	_ = os.WriteFile(blocker, nil, 0o600)
	t.Setenv("XDG_CONFIG_HOME", blocker)
	if _, err := Load(flags()); err != nil {
		t.Errorf("a default path under a file: %v", err)
	}
	t.Setenv("ORCH_CONFIG", filepath.Join(dir, "missing.yaml"))
	if _, err := Load(flags()); err == nil {
		t.Error("a config file named explicitly but missing was accepted")
	}
}
