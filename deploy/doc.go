// Package deploy holds no Go code: beside it are the files an operator
// deploys ccevents with (Prometheus alert rules and their unit tests, a
// Grafana dashboard, systemd units, a Dockerfile and a compose file for
// the three-node deployment of docs/operations.md). Its tests check those
// files with the real tools (promtool, systemd-analyze, the linters of
// tools/) and against the metrics the code defines.
package deploy
