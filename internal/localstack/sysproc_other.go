//go:build unix && !linux

package localstack

import "syscall"

// sysProcAttr puts the child in its own process group so Stop can kill all of it.
// Outside Linux there is no parent-death signal: a test binary killed with
// SIGKILL leaves its children running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
