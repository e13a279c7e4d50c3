package link

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// writtenQueue bounds what Memory holds of the router's writes; a test that
// stops receiving them stalls the router's writer rather than losing packets
// silently.
const writtenQueue = 1024

// Memory is an in-memory device for tests without root. The test side calls
// Inject and receives from Written; the router side uses Read, Write,
// BatchSize and Close like any device. Packets are copied both ways, so
// either side may reuse its buffers at once.
type Memory struct {
	name  string
	batch int

	mu      sync.Mutex
	pending [][]byte      // injected, not yet read
	ready   chan struct{} // holds a token while pending may be non-empty

	written chan []byte
	done    chan struct{}
	once    sync.Once
}

// NewMemory returns an open Memory device whose Read returns at most batch
// packets (at least 1).
func NewMemory(name string, batch int) *Memory {
	return &Memory{
		name:    name,
		batch:   max(batch, 1),
		ready:   make(chan struct{}, 1),
		written: make(chan []byte, writtenQueue),
		done:    make(chan struct{}),
	}
}

// Name is the name given to NewMemory.
func (m *Memory) Name() string { return m.name }

// Inject queues a copy of the IP packet pkt for Read. It never blocks;
// after Close it does nothing.
func (m *Memory) Inject(pkt []byte) {
	if m.closed() {
		return
	}
	m.mu.Lock()
	m.pending = append(m.pending, bytes.Clone(pkt))
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default: // a token is already there
	}
}

// Written delivers a copy of each packet the router writes, in order. It is
// never closed; select on it with a timeout.
func (m *Memory) Written() <-chan []byte { return m.written }

// BatchSize is the batch given to NewMemory.
func (m *Memory) BatchSize() int { return m.batch }

// Read blocks until packets were injected or the device is closed, then
// copies up to min(len(bufs), BatchSize()) of them to bufs[i][offset:]. After
// Close it returns os.ErrClosed, and packets not yet read are discarded. A
// packet longer than its buffer fails the read with io.ErrShortBuffer, and is
// dropped.
func (m *Memory) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for {
		if m.closed() {
			return 0, os.ErrClosed
		}
		if n, err := m.take(bufs, sizes, offset); n > 0 || err != nil {
			return n, err
		}
		select {
		case <-m.ready:
		case <-m.done:
			return 0, os.ErrClosed
		}
	}
}

func (m *Memory) take(bufs [][]byte, sizes []int, offset int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(len(bufs), m.batch, len(m.pending))
	for i := range n {
		if len(m.pending[i]) > len(bufs[i])-offset {
			if i == 0 {
				m.drop(1) // or every later Read fails on it again
				return 0, io.ErrShortBuffer
			}
			n = i // the next Read fails on it
			break
		}
		sizes[i] = copy(bufs[i][offset:], m.pending[i])
	}
	m.drop(n)
	return n, nil
}

// drop removes the first n pending packets, clearing them so the queue's
// backing array does not pin them.
func (m *Memory) drop(n int) {
	clear(m.pending[:n])
	m.pending = m.pending[n:]
}

// Write delivers a copy of each bufs[i][offset:] to Written; offset must be
// at least MinHeadroom, as for a TUN. It blocks while Written is full, and
// returns os.ErrClosed once the device is closed.
func (m *Memory) Write(bufs [][]byte, offset int) (int, error) {
	if err := checkHeadroom(offset); err != nil {
		return 0, err
	}
	for i, b := range bufs {
		// Checked first: select would pick at random between a closed
		// device and free room in Written.
		if m.closed() {
			return i, os.ErrClosed
		}
		select {
		case m.written <- bytes.Clone(b[offset:]):
		case <-m.done:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

// Close ends the device: Read and Write return os.ErrClosed from now on,
// including calls blocked in them. Closing again is harmless.
func (m *Memory) Close() error {
	m.once.Do(func() { close(m.done) })
	return nil
}

func (m *Memory) closed() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}
