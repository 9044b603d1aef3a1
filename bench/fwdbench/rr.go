package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// TCP request/response latency, netperf's TCP_RR in miniature: one
// connection, one byte each way, the next request sent when the reply
// has arrived; the client prints the median and 99th percentile of the
// round trips. Neither netperf nor sockperf's RR mode is needed, and the
// same client measures every switch.
//
//	fwdbench rr-server -t SECS ADDR:PORT   prints "listening ADDR", echoes one connection, exits
//	fwdbench rr-client -t SECS ADDR:PORT   prints "P50 P99 COUNT" (µs, µs, round trips)

// rrMaxSamples bounds the client's memory: at 10 µs a round trip a 60 s
// run would take 6 million; later round trips are not recorded.
const rrMaxSamples = 4 << 20

// rrMaxSecs bounds both sides' run time.
const rrMaxSecs = 600

func rrFlags(name string, args []string) (addr string, d time.Duration, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	secs := fs.Int("t", 5, "seconds")
	if err := fs.Parse(args); err != nil {
		return "", 0, fmt.Errorf("%s: %w", name, err)
	}
	if fs.NArg() != 1 {
		return "", 0, fmt.Errorf("usage: fwdbench %s [-t SECS] ADDR:PORT", name)
	}
	if *secs < 1 || *secs > rrMaxSecs {
		return "", 0, fmt.Errorf("%s: -t %d: want 1 to %d seconds", name, *secs, rrMaxSecs)
	}
	return fs.Arg(0), time.Duration(*secs) * time.Second, nil
}

// rrServer accepts one connection and echoes each byte until the client
// closes it or the deadline passes (the run time plus a margin).
func rrServer(args []string, out io.Writer) error {
	addr, d, err := rrFlags("rr-server", args)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	deadline := time.Now().Add(d + 30*time.Second)
	ln.(*net.TCPListener).SetDeadline(deadline)
	fmt.Fprintln(out, "listening", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	var b [1]byte
	for {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if _, err := c.Write(b[:]); err != nil {
			return err
		}
	}
}

// rrClient runs round trips for the given time and prints their median
// and 99th percentile in microseconds, and their count.
func rrClient(args []string, out io.Writer) error {
	addr, d, err := rrFlags("rr-client", args)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 10*time.Second))
	samples := make([]time.Duration, 0, 1<<16)
	var b [1]byte
	count := 0
	end := time.Now().Add(d)
	for t0 := time.Now(); t0.Before(end); count++ {
		if _, err := c.Write(b[:]); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return err
		}
		t1 := time.Now()
		if len(samples) < rrMaxSamples {
			samples = append(samples, t1.Sub(t0))
		}
		t0 = t1
	}
	if len(samples) == 0 {
		return errors.New("rr-client: no round trip completed")
	}
	p50, p99 := percentiles(samples)
	_, err = fmt.Fprintf(out, "%.1f %.1f %d\n", us(p50), us(p99), count)
	return err
}

// percentiles sorts samples and returns the 50th and 99th percentiles
// (nearest rank).
func percentiles(samples []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(samples)
	rank := func(p int) time.Duration {
		i := (len(samples)*p + 99) / 100 // ceil(n*p/100), 1-based
		return samples[max(i, 1)-1]
	}
	return rank(50), rank(99)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
