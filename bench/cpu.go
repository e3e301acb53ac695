package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The CPU time the target's processes spend, reported per op as
// broker-cpu-ns/op beside the throughput: on a shared machine a run's
// wall-clock rate moves with what else the machine does (writeback, other
// processes), while the CPU a broker spends on each record moves far less,
// so it is the figure to compare two builds of one broker by.

// started records the processes startProcess starts, so a run learns the
// processes of its target (targets are started one at a time).
var started struct {
	mu   sync.Mutex
	pids []int
}

// takeStarted returns the processes started since the last call.
func takeStarted() []int {
	started.mu.Lock()
	defer started.mu.Unlock()
	pids := started.pids
	started.pids = nil
	return pids
}

func recordStarted(pid int) {
	started.mu.Lock()
	started.pids = append(started.pids, pid)
	started.mu.Unlock()
}

// cpuTime is the user and system CPU time processes pids have used, or 0
// where /proc cannot tell (not Linux).
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		d, err := processCPU(pid)
		if err != nil {
			return 0
		}
		total += d
	}
	return total
}

// processCPU sums the time on a CPU of every thread of process pid, from
// /proc/<pid>/task/*/schedstat (nanoseconds; a Go program keeps its
// threads, so the time of threads that exited is not missed).
func processCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, t.Name(), err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}
