// Package rescue carries a panic from a worker goroutine to the goroutine that waits for the
// work. A panic nobody recovers ends the process: in Lambda, the invocation dies without an
// answer and the next one pays a cold start. Raised again on the waiting goroutine, it reaches
// the handler's recover and becomes a 500 problem like any other.
package rescue

import (
	"fmt"
	"runtime/debug"
)

// Panic is a recovered panic and the stack of the goroutine that raised it.
type Panic struct {
	Value any
	Stack []byte
}

func (p *Panic) String() string { return fmt.Sprintf("%v\n\ngoroutine stack:\n%s", p.Value, p.Stack) }

// Run runs fn and returns the panic it raised, or nil. Raise the result on the goroutine that
// waits for fn: `if p := rescue.Run(fn); p != nil { panic(p) }`.
func Run(fn func()) (p *Panic) {
	defer func() {
		if r := recover(); r != nil {
			p = &Panic{Value: r, Stack: debug.Stack()}
		}
	}()
	fn()
	return nil
}
