package redis

import "sync"

// FenceChanged returns a channel closed at the next change of Fenced, so
// that a watcher needs no polling. Take the channel before reading Fenced,
// then wait on it: a change after the read closes it (one before may close
// it too: read Fenced again, it may not have moved).
func (b *Broker) FenceChanged() <-chan struct{} { return b.fenceChange.next() }

// changeSignal tells whoever waits that something changed, each time anew.
type changeSignal struct {
	mu sync.Mutex    // protects ch
	ch chan struct{} // closed at the next change; nil until someone waits
}

// next returns a channel closed at the next call of changed.
func (c *changeSignal) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// changed closes the channel next has handed out, if any.
func (c *changeSignal) changed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}
