package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)
// needs cgo to ask, so the constant stands in).
const clockTicks = 100

// procSample is one reading of a process's memory and CPU use.
type procSample struct {
	RSS int64         // resident set size in bytes
	CPU time.Duration // user + system time
}

// readProc reads /proc/PID/status (VmRSS) and /proc/PID/stat (utime, stime).
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					s.RSS = kb << 10
				}
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses; fields
	// are counted from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return s, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return s, nil
}

// selfCPU is this process's user + system CPU time, to the microsecond.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxConnsPerProc is how many connections one process may hold, leaving
// room for the descriptors the runtime and the tool itself need.
func maxConnsPerProc() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1000
	}
	// Go raises the soft limit to the hard one at start-up; children inherit it.
	limit := rl.Max
	if limit > 1<<20 {
		limit = 1 << 20
	}
	return int(limit) - 100
}

// errNoListener means no process visible to us listens on the port.
var errNoListener = errors.New("no process of this user listens on that port")

// pidListeningOn finds the process listening on a TCP port of this machine:
// the socket's inode from /proc/net/tcp{,6}, then the process holding a
// descriptor to it from /proc/*/fd. It sees only processes this user may
// inspect.
func pidListeningOn(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listenInodes(f, port, inodes); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("port %d: %w", port, errNoListener)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err == nil && pid != self && ownsInode(pid, inodes) {
			return pid, nil
		}
	}
	// The listener may be in this very process (tests, an in-process peer).
	if ownsInode(self, inodes) {
		return self, nil
	}
	return 0, fmt.Errorf("port %d: %w", port, errNoListener)
}

// ownsInode reports whether process pid holds a descriptor to one of the
// sockets in inodes.
func ownsInode(pid int, inodes map[string]bool) bool {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true
		}
	}
	return false
}

// listenInodes adds the inodes of sockets listening on port in one
// /proc/net/tcp-format file.
func listenInodes(path string, port int, into map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(fields) < 10 || fields[3] != "0A" { // 0A: TCP_LISTEN
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && int(p) == port {
			into[fields[9]] = true
		}
	}
	return sc.Err()
}

// machineCPU is the CPU time all processes of the machine used since boot
// (every state of /proc/stat's "cpu" line but idle and iowait), and the part
// of it spent in softirq, where the kernel does most loopback TCP work.
// Compared with the server's and the tool's own CPU it shows how much other
// processes took during a measurement, which on a shared two-core machine
// decides whether a figure can be trusted. With tick-based accounting (the
// kernel here) softirq time is also charged to the process it interrupted, so
// it is part of the server's and the tool's times, not extra.
func machineCPU() (busy, softirq time.Duration) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return 0, 0
	}
	var b, si int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, 0
		}
		// Fields: user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		switch {
		case i == 3 || i == 4 || i >= 8:
			continue
		case i == 6:
			si = n
		}
		b += n
	}
	return time.Duration(b) * time.Second / clockTicks, time.Duration(si) * time.Second / clockTicks
}
