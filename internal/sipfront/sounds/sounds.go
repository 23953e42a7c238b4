// Package sounds holds the announcements and hold music the SIP front end
// plays, as raw G.711 μ-law at 8 kHz (see README.md for how they are made
// and their licence).
package sounds

import (
	"embed"
	"fmt"
)

//go:embed *.ul
var files embed.FS

// Names of the sounds.
const (
	Welcome      = "welcome"
	Hold         = "hold"
	Full         = "full"
	NoAgents     = "noagents"
	Monitor      = "monitor"
	PositionMany = "positionmany"
)

// Position is the announcement of place n in line (1-10); past 10 it is
// PositionMany.
func Position(n int) string {
	if n < 1 || n > 10 {
		return PositionMany
	}
	return fmt.Sprintf("position%d", n)
}

// Ulaw returns a sound's μ-law samples.
func Ulaw(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".ul")
	if err != nil {
		return nil, fmt.Errorf("sound %s: %w", name, err)
	}
	return b, nil
}
