//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// The peak RSS comes from Linux's /proc: elsewhere bench stops there with an error.

func dieWithParent() *syscall.SysProcAttr { return nil }

func vmHWM(int) (int64, error) { return 0, errors.New("peak RSS is read from /proc: Linux only") }

func cpuModel() string { return "unknown CPU" }

func loadAverage() string { return "load unknown" }
