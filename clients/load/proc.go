package load

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat times: USER_HZ is 100 on every
// Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// cpuTime is the user plus system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	// The command name is in parentheses and may hold spaces: count the
	// fields after its closing parenthesis. utime and stime are fields
	// 14 and 15 of the line, 12 and 13 after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("read cpu time: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu time: malformed /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read cpu time: malformed /proc/%d/stat", pid)
	}
	return time.Duration(u+s) * clockTick, nil
}

// processCPU is cpuTime, read for this process from getrusage, which
// counts microseconds rather than the 10 ms ticks of /proc.
func processCPU(pid int) (time.Duration, error) {
	if pid != os.Getpid() {
		return cpuTime(pid)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// rss is the resident set size of a process, in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read rss: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read rss: no VmRSS in /proc/%d/status", pid)
}

// raiseFileLimit raises the soft limit on open files to the hard limit (Go
// does it at start-up since 1.19; doing it here says that it matters) and
// reports an error if need files will not fit.
func raiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("get open files limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise open files limit: %w", err)
		}
	}
	if uint64(need) > lim.Cur {
		return fmt.Errorf("%d connections need more open files than the limit of %d", need, lim.Cur)
	}
	return nil
}

// writeCalls is how many write system calls (write, writev, sendmsg...) a
// process has made, from /proc/<pid>/io: the server's count shows how many
// frames each of its socket writes carried.
func writeCalls(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read write calls: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw:")); ok {
			return strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, fmt.Errorf("read write calls: no syscw in /proc/%d/io", pid)
}

// procStats samples a process's CPU, memory and write calls; pid 0 means
// none (every reading is then zero).
type procStats struct {
	pid    int
	start  time.Time
	cpu0   time.Duration
	writes int64
}

func startStats(pid int) procStats {
	p := procStats{pid: pid, start: time.Now()}
	if pid > 0 {
		p.cpu0, _ = processCPU(pid)
		p.writes, _ = writeCalls(pid)
	}
	return p
}

// writeCalls is how many write system calls the process made since
// startStats; 0 if unknown.
func (p procStats) writeCalls() int64 {
	if p.pid <= 0 {
		return 0
	}
	w, err := writeCalls(p.pid)
	if err != nil {
		return 0
	}
	return w - p.writes
}

// cpu is the CPU time the process used since startStats; 0 if unknown.
func (p procStats) cpu() time.Duration {
	if p.pid <= 0 {
		return 0
	}
	c, err := processCPU(p.pid)
	if err != nil {
		return 0
	}
	return c - p.cpu0
}

// busy is the share of one core the process used since startStats, in percent.
func (p procStats) busy() float64 {
	return 100 * p.cpu().Seconds() / time.Since(p.start).Seconds()
}
