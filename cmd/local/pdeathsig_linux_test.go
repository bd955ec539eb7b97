package main

import "syscall"

// dieWithParent has the kernel SIGKILL the program if the test binary dies (a timeout panic):
// the program then dies too, and its own children with it.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
