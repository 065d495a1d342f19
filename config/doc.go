// Package config reads orch's settings with one precedence everywhere:
// command-line flags, then ORCH_* environment variables, then a config file,
// then the flags' defaults.
//
// Every setting is named after its flag. In the environment it is upper case
// with ORCH_ in front and underscores for dashes (--database-url is
// ORCH_DATABASE_URL); in the config file it is the flag's name
// (database-url). The config file is --config (env ORCH_CONFIG), by default
// orch/config.yaml in the user's config directory (~/.config/orch/config.yaml
// on Linux); the default file may be absent, a file named explicitly must
// exist. For example:
//
//	database-url: postgres://orch@db.example:5432/orch
//	addr: https://orch.example:8989
//	ca-cert: /etc/orch/ca.pem
//
// The CLI's API token comes from --token, ORCH_TOKEN or the token key of the
// config file, and otherwise from the token file that orch dev writes
// (~/.config/orch/token).
package config
