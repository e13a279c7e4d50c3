// Command tuncopy is the throughput ceiling for any forwarder built on
// golang.zx2c4.com/wireguard/tun: it opens two TUN devices and copies every
// packet read from one, unchanged, into the other. No parsing, no routing,
// no checksum work beyond what the tun package does for offload. Whatever
// tungate's pipeline costs shows up as the distance from this number.
//
// The way of a packet, per direction (one goroutine each):
//
//	src.Read(batch)  -> the tun package reads one (possibly TSO/USO) frame
//	                    and splits it into MTU-sized segments across bufs
//	dst.Write(batch) -> the tun package coalesces the segments again (GRO)
//	                    and writes each coalesced packet with one write(2)
//
// The program only creates the devices (in the network namespace it runs
// in); moving them into namespaces and configuring addresses and routes on
// their kernel side is left to the caller (bench/forward.sh uses ip(8)).
// A device keeps working through its open fd after `ip link set ... netns`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
)

const (
	// offset is the headroom left in front of each packet. Write puts the
	// 10-byte virtio-net header there, so it must be at least that;
	// wireguard-go uses 16 and so do we.
	offset = 16
	// bufSize leaves room for a whole coalesced super-packet: Write's GRO
	// appends later segments into the first buffer of a run.
	bufSize = offset + 65535
	// maxLoggedWriteErrors bounds the log: a device that is still down, or a
	// kernel that rejects GRO-coalesced writes, fails on every batch.
	maxLoggedWriteErrors = 5
)

// stats are one direction's counters. Each is written by its copy goroutine
// only and read after that goroutine has returned, so no atomics are needed.
type stats struct {
	batches, packets, bytes uint64
	tooManySegments         uint64
	writeErrors             uint64
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("tuncopy: ")

	nameA := flag.String("a", "", "name of the first TUN device to create (required)")
	nameB := flag.String("b", "", "name of the second TUN device to create (required)")
	mtu := flag.Int("mtu", 1500, "MTU of both devices")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s -a NAME -b NAME [-mtu N]\n\n"+
			"Creates two offload-enabled TUN devices and copies packets between them\n"+
			"until SIGINT/SIGTERM. Configure their kernel side (netns, addresses,\n"+
			"routes, up) yourself once both appear.\n\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if *nameA == "" || *nameB == "" || *nameA == *nameB || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	if err := run(*nameA, *nameB, *mtu); err != nil {
		log.Fatal(err)
	}
}

func run(nameA, nameB string, mtu int) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	devA, err := tun.CreateTUN(nameA, mtu)
	if err != nil {
		return fmt.Errorf("create %s: %w", nameA, err)
	}
	devB, err := tun.CreateTUN(nameB, mtu)
	if err != nil {
		devA.Close()
		return fmt.Errorf("create %s: %w", nameB, err)
	}
	// Without IFF_VNET_HDR the batch is 1 and this measures a different,
	// much slower thing; say so instead of printing a misleading ceiling.
	if devA.BatchSize() == 1 || devB.BatchSize() == 1 {
		log.Printf("warning: batch size %d/%d: no virtio-net offload, one packet per syscall",
			devA.BatchSize(), devB.BatchSize())
	}

	// The tun package's link listeners block on a small buffered channel, so
	// Events must be drained or they stall. The channels close on Close.
	var wg sync.WaitGroup
	for _, dev := range []tun.Device{devA, devB} {
		wg.Go(func() {
			for range dev.Events() {
			}
		})
	}

	var statAB, statBA stats
	errc := make(chan error, 2)
	wg.Go(func() { errc <- copyLoop(devA, devB, &statAB) })
	wg.Go(func() { errc <- copyLoop(devB, devA, &statBA) })
	log.Printf("copying between %s and %s (mtu %d, batch %d)", nameA, nameB, mtu, devA.BatchSize())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	// Closing the devices unblocks the pending Reads (os.ErrClosed), which
	// ends both loops and the event drains, and removes the devices.
	devA.Close()
	devB.Close()
	wg.Wait()

	report(nameA, nameB, &statAB)
	report(nameB, nameA, &statBA)
	return runErr
}

// copyLoop moves batches from src to dst until src is closed. It returns nil
// on close and the error for any other read failure.
func copyLoop(src, dst tun.Device, st *stats) error {
	batch := src.BatchSize()
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, batch)
	out := make([][]byte, 0, batch)
	srcName, _ := src.Name()
	dstName, _ := dst.Name()

	for {
		n, err := src.Read(bufs, sizes, offset)
		if err != nil {
			switch {
			case errors.Is(err, tun.ErrTooManySegments):
				// The super-packet had more segments than bufs; the n
				// segments that fit are valid and still go out. TCP
				// retransmits the rest, as it would for any drop.
				st.tooManySegments++
			case errors.Is(err, os.ErrClosed):
				return nil
			default:
				return fmt.Errorf("read %s: %w", srcName, err)
			}
		}
		if n == 0 {
			continue
		}

		// Slice to the packet but keep each buffer's full capacity: Write's
		// GRO coalesces following segments into the first one in place.
		out = out[:0]
		for i := range n {
			out = append(out, bufs[i][:offset+sizes[i]])
			st.bytes += uint64(sizes[i])
		}
		st.batches++
		st.packets += uint64(n)

		if _, err := dst.Write(out, offset); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			// Not fatal: a write fails while the other device is still
			// down (EIO) and the packets are simply lost, like on a wire.
			st.writeErrors++
			if st.writeErrors <= maxLoggedWriteErrors {
				log.Printf("write %s -> %s: %v", srcName, dstName, err)
			}
		}
	}
}

func report(from, to string, st *stats) {
	avg := 0.0
	if st.batches > 0 {
		avg = float64(st.packets) / float64(st.batches)
	}
	log.Printf("%s -> %s: %d packets, %d bytes, %d batches (avg %.1f), %d too-many-segments, %d write errors",
		from, to, st.packets, st.bytes, st.batches, avg, st.tooManySegments, st.writeErrors)
}
