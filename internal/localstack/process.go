package localstack

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a child has to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// child is one running component process, leader of its own process group.
type child struct {
	name    string
	cmd     *exec.Cmd
	out     *output
	done    chan struct{} // closed once the process is reaped
	waitErr error         // set before done is closed
}

// startChild starts argv as a tied child (see StartTied).
func startChild(name string, argv, env []string, sink *logSink) (*child, error) {
	ch := &child{name: name, out: &output{sink: sink, prefix: "[" + name + "] "}, done: make(chan struct{})}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = ch.out
	cmd.Stderr = ch.out
	// Do not wait for ever for the output pipe if something else inherited it.
	cmd.WaitDelay = 2 * time.Second
	ch.cmd = cmd
	waited, err := StartTied(cmd)
	if err != nil {
		return nil, err
	}
	go func() {
		ch.waitErr = <-waited
		ch.out.flush()
		close(ch.done)
	}()
	return ch, nil
}

// StartTied starts cmd in its own process group (so that the whole group can be stopped) and,
// on Linux, tied to this process: the kernel SIGKILLs it when this process dies (Pdeathsig),
// so it cannot outlive a test binary that is killed or exits early. The returned channel
// receives cmd.Wait's result.
//
// The kernel ties that signal to the thread that forked the child, not to the process, and Go
// retires or reuses threads freely; so the child is started and waited for from a goroutine
// that holds its OS thread locked for the child's whole life.
func StartTied(cmd *exec.Cmd) (<-chan error, error) {
	cmd.SysProcAttr = sysProcAttr()
	started, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, after the child is reaped,
		// Go ends the thread instead of handing it to other goroutines.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}

func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, SIGKILL after stopGrace, and
// waits until the child is reaped. Exit statuses are expected and not reported.
func (ch *child) stop() {
	if ch.exited() {
		return
	}
	pgid := ch.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-ch.done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-ch.done
	}
}

// logSink serialises the children's lines onto the caller's writer.
type logSink struct {
	mu sync.Mutex
	w  io.Writer // nil discards
}

func (s *logSink) line(prefix, line string) {
	if s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, prefix+line+"\n")
}

// output splits a child's output into lines, forwards them to the sink and keeps
// the last few for error messages.
type output struct {
	sink    *logSink
	prefix  string
	mu      sync.Mutex
	partial []byte
	last    []string
}

const (
	tailLines   = 25
	maxLineSize = 16 << 10
)

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.addLine(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	if len(o.partial) > maxLineSize {
		o.addLine(string(o.partial))
		o.partial = nil
	}
	return len(p), nil
}

func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.addLine(string(o.partial))
		o.partial = nil
	}
}

func (o *output) addLine(line string) {
	line = strings.TrimRight(line, "\r")
	o.sink.line(o.prefix, line)
	o.last = append(o.last, line)
	if len(o.last) > tailLines {
		o.last = o.last[len(o.last)-tailLines:]
	}
}

// tail returns the last lines of output, indented, for an error message.
func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := o.last
	if len(o.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(o.partial))
	}
	if len(lines) == 0 {
		return "\t(no output)"
	}
	return "\t" + strings.Join(lines, "\n\t")
}

func (o *output) contains(s string) bool {
	return strings.Contains(strings.ToLower(o.tail()), strings.ToLower(s))
}
