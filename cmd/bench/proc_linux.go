package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// dieWithParent kills a child when bench dies, however it dies.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// vmHWM reads a process's peak resident set size, in KiB, from /proc/<pid>/status.
func vmHWM(pid int) (int64, error) {
	v, err := procField("/proc/"+strconv.Itoa(pid)+"/status", "VmHWM:")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
}

func cpuModel() string {
	if v, err := procField("/proc/cpuinfo", "model name"); err == nil {
		return strings.TrimSpace(strings.TrimPrefix(v, ":"))
	}
	return "unknown CPU"
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return "load " + strings.Join(f[:3], " ")
	}
	return "load unknown"
}

// procField returns the rest of the first line of file that starts with prefix, trimmed.
func procField(file, prefix string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("%s: no %q line", file, prefix)
}
