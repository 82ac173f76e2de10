// Command writefloor measures what one write to a loopback TCP socket costs
// the writing core on this machine, with nothing of Tertulia around it: the
// floor under every fan-out figure in BENCHMARKS.md. A fan-out to N
// connections cannot take less than N such writes.
//
// Run the writer and the reader as two processes pinned to a core each, as
// the load scenarios run the server and the tool:
//
//	taskset -c 0 writefloor -mode write -conns 10000 &
//	taskset -c 1 writefloor -mode read -conns 10000
//
// The writer accepts the connections, then every period writes one
// message-sized buffer to each in turn, as a fan-out of one message does,
// and prints the mean cost per write of each round.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"sync"
	"time"
)

func main() {
	mode := flag.String("mode", "write", "write (accepts and writes) or read (dials and reads)")
	addr := flag.String("addr", "127.0.0.1:17777", "loopback address")
	conns := flag.Int("conns", 10000, "connections")
	rounds := flag.Int("rounds", 30, "fan-outs, one per period")
	period := flag.Duration("period", 100*time.Millisecond, "time between fan-outs")
	size := flag.Int("size", 180, "bytes per write (a room message frame)")
	flag.Parse()
	switch *mode {
	case "read":
		read(*addr, *conns)
	case "write":
		write(*addr, *conns, *rounds, *period, *size)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

// read dials conns connections and reads each until the writer closes it.
func read(addr string, conns int) {
	var wg sync.WaitGroup
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		wg.Go(func() {
			b := make([]byte, 4096)
			for {
				if _, err := c.Read(b); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// write accepts conns connections, then writes size bytes to each of them
// once per period, rounds times, and reports the mean cost of a write.
func write(addr string, conns, rounds int, period time.Duration, size int) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	cs := make([]net.Conn, 0, conns)
	for len(cs) < conns {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		cs = append(cs, c)
	}
	msg := make([]byte, size)
	for r := range rounds {
		start := time.Now()
		for _, c := range cs {
			if _, err := c.Write(msg); err != nil {
				log.Fatal(err)
			}
		}
		took := time.Since(start)
		fmt.Printf("round %d: %d writes in %v: %.2f µs per write\n", r, len(cs), took.Round(time.Microsecond), float64(took.Nanoseconds())/1e3/float64(len(cs)))
		time.Sleep(period - took)
	}
	for _, c := range cs {
		c.Close()
	}
}
