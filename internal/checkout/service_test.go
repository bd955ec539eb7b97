package checkout

import (
	"fmt"
	"strings"
	"testing"
)

// A panic in work run off the caller's goroutine is raised again on the caller's goroutine, with
// the stack where it happened: there the handler's recover answers it with a 500 problem,
// instead of the process dying.
func TestWorkerPanicReachesTheCaller(t *testing.T) {
	s := New(nil, nil, nil, nil, Options{})
	for name, run := range map[string]func(){
		"concurrently": func() { s.concurrently(func() {}, func() { panic("boom in a worker") }) },
		"background":   func() { s.background(func() { panic("boom in a worker") })() },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("the worker's panic did not reach the caller")
				}
				if text := fmt.Sprint(r); !strings.Contains(text, "boom in a worker") || !strings.Contains(text, "service_test.go") {
					t.Errorf("panic %q, want the worker's value and its stack", text)
				}
			}()
			run()
		})
	}
}
