package localstack

import "syscall"

// sysProcAttr puts the child in its own process group (so Stop can kill all of it)
// and has the kernel SIGKILL it if the thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
