//go:build unix

package localstack

import "syscall"

// processRunning reports whether a process pid exists (signal 0 checks without sending one).
func processRunning(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
