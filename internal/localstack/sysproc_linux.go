package localstack

import "syscall"

// sysProcAttr puts the child in its own process group (so Stop can kill all of it)
// and has the kernel SIGKILL it if the thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// processRunning reports whether a process pid exists (signal 0 checks without sending one).
func processRunning(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
