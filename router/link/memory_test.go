package link

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// device mirrors the router's Device interface (declared in package router,
// which this package must not import) so the compiler checks our types.
type device interface {
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	Close() error
}

var (
	_ device = (*Memory)(nil)
	_ device = (*Queue)(nil)
)

const testHeadroom = 64

// newBufs returns n read buffers the way the router sizes them.
func newBufs(n int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, testHeadroom+65535)
	}
	return bufs, make([]int, n)
}

// writeBufs puts each packet behind testHeadroom bytes, with spare capacity
// for GRO as the router leaves it.
func writeBufs(pkts ...[]byte) [][]byte {
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		b := make([]byte, testHeadroom+len(p), testHeadroom+65535)
		copy(b[testHeadroom:], p)
		bufs[i] = b
	}
	return bufs
}

func TestMemoryReadBatches(t *testing.T) {
	m := NewMemory("mem0", 2)
	defer m.Close()
	for _, p := range []string{"one", "two", "three"} {
		m.Inject([]byte(p))
	}
	bufs, sizes := newBufs(4)
	var got []string
	for _, want := range []int{2, 1} {
		n, err := m.Read(bufs, sizes, testHeadroom)
		if err != nil || n != want {
			t.Fatalf("Read = %d, %v; want %d packets (batch 2)", n, err, want)
		}
		for i := range n {
			got = append(got, string(bufs[i][testHeadroom:testHeadroom+sizes[i]]))
		}
	}
	if want := "one two three"; strings.Join(got, " ") != want {
		t.Errorf("read %q, want %q", strings.Join(got, " "), want)
	}
}

func TestMemoryInjectCopies(t *testing.T) {
	m := NewMemory("mem0", 1)
	defer m.Close()
	pkt := []byte("abc")
	m.Inject(pkt)
	pkt[0] = 'X'
	bufs, sizes := newBufs(1)
	if n, err := m.Read(bufs, sizes, testHeadroom); err != nil || n != 1 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if got := string(bufs[0][testHeadroom : testHeadroom+sizes[0]]); got != "abc" {
		t.Errorf("read %q after the injector reused its buffer, want %q", got, "abc")
	}
}

func TestMemoryReadBlocksUntilInject(t *testing.T) {
	m := NewMemory("mem0", 8)
	defer m.Close()
	res := readAsync(m)
	select {
	case r := <-res:
		t.Fatalf("Read returned %d, %v before anything was injected", r.n, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	m.Inject([]byte("late"))
	select {
	case r := <-res:
		if r.err != nil || r.n != 1 {
			t.Fatalf("Read = %d, %v; want 1 packet", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Inject")
	}
}

func TestMemoryCloseUnblocksRead(t *testing.T) {
	m := NewMemory("mem0", 8)
	res := readAsync(m)
	time.Sleep(20 * time.Millisecond) // let Read block
	m.Close()
	select {
	case r := <-res:
		if !errors.Is(r.err, os.ErrClosed) {
			t.Fatalf("Read after Close = %d, %v; want os.ErrClosed", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	m.Inject([]byte("ignored"))
	bufs, sizes := newBufs(1)
	if _, err := m.Read(bufs, sizes, testHeadroom); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read on a closed device = %v, want os.ErrClosed", err)
	}
	if _, err := m.Write(writeBufs([]byte("x")), testHeadroom); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write on a closed device = %v, want os.ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

type readResult struct {
	n   int
	err error
}

func readAsync(d device) <-chan readResult {
	res := make(chan readResult, 1)
	go func() {
		bufs, sizes := newBufs(d.BatchSize())
		n, err := d.Read(bufs, sizes, testHeadroom)
		res <- readResult{n, err}
	}()
	return res
}

func TestMemoryWriteCopies(t *testing.T) {
	m := NewMemory("mem0", 4)
	defer m.Close()
	bufs := writeBufs([]byte("first"), []byte("second"))
	if n, err := m.Write(bufs, testHeadroom); err != nil || n != 2 {
		t.Fatalf("Write = %d, %v; want 2", n, err)
	}
	bufs[0][testHeadroom] = 'X' // the router reuses its buffer at once
	for _, want := range []string{"first", "second"} {
		select {
		case got := <-m.Written():
			if string(got) != want {
				t.Errorf("written %q, want %q", got, want)
			}
		case <-time.After(time.Second):
			t.Fatalf("nothing written, want %q", want)
		}
	}
}

func TestMemoryWriteNeedsHeadroom(t *testing.T) {
	m := NewMemory("mem0", 1)
	defer m.Close()
	if _, err := m.Write([][]byte{[]byte("pkt")}, 0); err == nil {
		t.Error("Write with offset 0 succeeded; a TUN with offload needs MinHeadroom")
	}
}

func TestMemoryShortBuffer(t *testing.T) {
	m := NewMemory("mem0", 4)
	defer m.Close()
	m.Inject(make([]byte, 100))
	m.Inject([]byte("fits"))
	small := [][]byte{make([]byte, testHeadroom+10)}
	sizes := make([]int, 1)
	if _, err := m.Read(small, sizes, testHeadroom); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Read of 100 bytes into 10 = %v, want io.ErrShortBuffer", err)
	}
	if n, err := m.Read(small, sizes, testHeadroom); err != nil || n != 1 || sizes[0] != 4 {
		t.Fatalf("Read after the dropped packet = %d, %v (size %d); want the next packet", n, err, sizes[0])
	}
}
