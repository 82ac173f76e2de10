package redis

import (
	"testing"
	"time"
)

// A watcher of the fence is told when the broker is fenced off and when it
// claims its id back, without asking in between.
func TestFenceChangedTellsEachChange(t *testing.T) {
	s := newSameID(t, steady)
	a := s.start()
	fenced := a.FenceChanged()
	select {
	case <-fenced:
		t.Fatal("told of a change of the fence before any")
	default:
	}
	twin := s.twinOf(a)
	select {
	case <-fenced:
	case <-time.After(waitTimeout):
		t.Fatal("not told that the broker was fenced off")
	}

	back := a.FenceChanged()
	if !a.Fenced() {
		t.Fatal("not fenced off while the twin holds the id")
	}
	if err := twin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-back:
	case <-time.After(waitTimeout):
		t.Fatal("not told that the broker claimed its id back")
	}
	if a.Fenced() {
		t.Error("told of the claim back, but still fenced off")
	}
}

// A change signal closes the channel it handed out, once, and hands out a
// fresh one after; a change nobody waits for is not kept for later.
func TestChangeSignal(t *testing.T) {
	var c changeSignal
	c.changed() // nobody waits: nothing to close, nothing kept
	first := c.next()
	if c.next() != first {
		t.Fatal("two waiters before a change got different channels")
	}
	select {
	case <-first:
		t.Fatal("closed before any change since it was taken")
	default:
	}
	c.changed()
	c.changed() // a second change with no new waiter: no double close
	select {
	case <-first:
	default:
		t.Fatal("not closed by the change")
	}
	select {
	case <-c.next():
		t.Fatal("the channel taken after the change is already closed")
	default:
	}
}
