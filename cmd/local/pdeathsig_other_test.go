//go:build !linux

package main

import "syscall"

// dieWithParent: only Linux has a parent-death signal; the tests' cleanup kills the program.
func dieWithParent() *syscall.SysProcAttr { return nil }
