// Command ctbench is the traffic of bench/conntrack.sh that iperf3 does
// not make: short TCP connections (a server and a client that counts
// connections per second) and a SYN flood at a fixed rate from random
// source ports, each connection new to a tracker.
//
//	ctbench serve -addr IP:PORT -secs N
//	ctbench connrate -addr IP:PORT -secs N [-workers W]   prints "CONNS_PER_S CONNS FAILED"
//	ctbench synflood -src IP -dst IP -dport P -pps R -secs N   prints "SENT"
//
// Every command stops by itself after its seconds: the script's timeouts
// are a second guard, not the only one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ctbench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: ctbench serve|connrate|synflood [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "", "server address IP:PORT")
	secs := fs.Float64("secs", 5, "duration in seconds (at most 600)")
	workers := fs.Int("workers", 4, "concurrent connecting clients (1-64)")
	src := fs.String("src", "", "flood source IPv4 address")
	dst := fs.String("dst", "", "flood destination IPv4 address")
	dport := fs.Int("dport", 5299, "flood destination port")
	pps := fs.Int("pps", 20000, "flood rate, packets per second (1-1000000)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *secs <= 0 || *secs > 600 {
		return fmt.Errorf("-secs %v: want 0 < secs <= 600", *secs)
	}
	d := time.Duration(*secs * float64(time.Second))
	switch args[0] {
	case "serve":
		return serve(*addr, d)
	case "connrate":
		if *workers < 1 || *workers > 64 {
			return fmt.Errorf("-workers %d: want 1-64", *workers)
		}
		return connrate(*addr, d, *workers)
	case "synflood":
		if *pps < 1 || *pps > 1000000 {
			return fmt.Errorf("-pps %d: want 1-1000000", *pps)
		}
		return synflood(*src, *dst, *dport, *pps, d)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// serve accepts connections for d and closes each once the client has
// closed its side, so that the client ends the connection first (the
// usual short connection: request, answer, client closes).
func serve(addr string, d time.Duration) error {
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	time.AfterFunc(d, func() { l.Close() })
	for {
		c, err := l.Accept()
		if err != nil {
			return nil
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// connrate opens, uses (one byte) and closes connections from workers
// goroutines for d and prints connections per second, the count and the
// failures.
func connrate(addr string, d time.Duration, workers int) error {
	var ok, failed atomic.Int64
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := []byte{'x'}
			for time.Now().Before(end) {
				c, err := net.DialTimeout("tcp4", addr, time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				_, werr := c.Write(buf)
				if tc, isTCP := c.(*net.TCPConn); isTCP && werr == nil {
					werr = tc.CloseWrite()
				}
				// Wait for the server's FIN: the connection has then
				// gone through the whole handshake and close.
				_, rerr := c.Read(buf)
				c.Close()
				if werr != nil || (rerr != nil && !errors.Is(rerr, io.EOF)) {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("%.0f %d %d\n", float64(ok.Load())/el, ok.Load(), failed.Load())
	return nil
}

// synflood sends TCP SYNs from random source ports through a raw socket,
// in bursts every millisecond, at pps for d.
func synflood(src, dst string, dport, pps int, d time.Duration) error {
	s4, d4 := net.ParseIP(src).To4(), net.ParseIP(dst).To4()
	if s4 == nil || d4 == nil {
		return fmt.Errorf("-src %q -dst %q: want IPv4 addresses", src, dst)
	}
	if dport < 1 || dport > 65535 {
		return fmt.Errorf("-dport %d: want 1-65535", dport)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrInet4{Addr: [4]byte(d4)}
	pkt := make([]byte, 40)
	end := time.Now().Add(d)
	start := time.Now()
	sent := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for now := time.Now(); now.Before(end); now = <-tick.C {
		due := int(now.Sub(start).Seconds() * float64(pps))
		for ; sent < due; sent++ {
			synPacket(pkt, s4, d4, uint16(1024+rand.IntN(64511)), uint16(dport), rand.Uint32())
			if err := syscall.Sendto(fd, pkt, 0, to); err != nil && !errors.Is(err, syscall.ENOBUFS) {
				return fmt.Errorf("sendto %s: %w", dst, err)
			}
		}
	}
	fmt.Println(sent)
	return nil
}

// synPacket writes a 40-byte IPv4+TCP SYN into pkt.
func synPacket(pkt []byte, src, dst net.IP, sport, dport uint16, seq uint32) {
	clear(pkt)
	pkt[0] = 0x45
	put16(pkt[2:], 40)
	pkt[8] = 64
	pkt[9] = syscall.IPPROTO_TCP
	copy(pkt[12:16], src)
	copy(pkt[16:20], dst)
	put16(pkt[10:], checksum(pkt[:20], 0))
	t := pkt[20:]
	put16(t[0:], sport)
	put16(t[2:], dport)
	t[4], t[5], t[6], t[7] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	t[12] = 5 << 4
	t[13] = 0x02 // SYN
	put16(t[14:], 64240)
	pseudo := uint32(src[0])<<8 | uint32(src[1])
	pseudo += uint32(src[2])<<8 | uint32(src[3])
	pseudo += uint32(dst[0])<<8 | uint32(dst[1])
	pseudo += uint32(dst[2])<<8 | uint32(dst[3])
	pseudo += syscall.IPPROTO_TCP + 20
	put16(t[16:], checksum(t, pseudo))
}

func put16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// checksum is the Internet checksum of b with sum already added.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
