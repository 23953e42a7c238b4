// Package buildinfo says which build of ccevents is running: its module
// version, the commit it was built from, the Go toolchain, and the
// nats-server version it embeds. It reads what the Go toolchain records in
// every binary; it never looks anything up at run time.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// version and commit override what the toolchain recorded, for builds
// where it records nothing (a git worktree, a container build without
// .git); `make build` and deploy/Dockerfile set them:
//
//	go build -ldflags "-X github.com/ccevents/ccevents/internal/buildinfo.version=v1.4.0 -X github.com/ccevents/ccevents/internal/buildinfo.commit=1a2b3c…" ./cmd/ccevents
var version, commit string

// Info describes the running build.
type Info struct {
	// Version is the module version (v1.4.0), or "(devel)" for a build
	// from a work tree.
	Version string `json:"version"`
	// Commit is the git revision the binary was built from, with
	// "-modified" when the work tree had uncommitted changes; empty when
	// the toolchain recorded none (go test, -buildvcs=false).
	Commit string `json:"commit"`
	// CommitTime is when that commit was made (RFC 3339), if known.
	CommitTime string `json:"commit_time,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
	// NATSVersion is the nats-server embedded when no --nats is given.
	NATSVersion string `json:"nats_version"`
}

// Read returns the running build's Info.
var Read = sync.OnceValue(func() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version(), NATSVersion: server.VERSION}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v := bi.Main.Version; v != "" {
			info.Version = v
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && info.Commit != "" {
			info.Commit += "-modified"
		}
	}
	if version != "" {
		info.Version = version
	}
	if commit != "" {
		info.Commit = commit
	}
	return info
})

// Collector is ccevents_build_info: always 1, with the build as labels,
// so dashboards can show which version each node runs and spot a mixed
// cluster during an upgrade.
func Collector() prometheus.Collector {
	i := Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ccevents_build_info",
		Help:        "Always 1; its labels say which build of ccevents this process runs.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "go_version": i.GoVersion, "nats_version": i.NATSVersion},
	})
	g.Set(1)
	return g
}
