// Command proxy records OpenFlow traffic: it listens on a unix socket,
// forwards each connection to the real one and appends every message as
// "conn direction hex" to a file (the format of ../../captures/*.hex).
// Usage: proxy LISTEN_SOCKET TARGET_SOCKET OUTPUT_FILE
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

func main() {
	ln, err := net.Listen("unix", os.Args[1])
	if err != nil {
		panic(err)
	}
	out, _ := os.OpenFile(os.Args[3], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0644)
	var mu sync.Mutex
	n := 0
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		n++
		id := n
		s, err := net.Dial("unix", os.Args[2])
		if err != nil {
			panic(err)
		}
		pipe := func(dir string, a, b net.Conn) {
			for {
				h := make([]byte, 8)
				if _, err := io.ReadFull(a, h); err != nil {
					b.Close()
					return
				}
				l := int(binary.BigEndian.Uint16(h[2:]))
				if l < 8 {
					b.Close()
					return
				}
				body := make([]byte, l-8)
				if _, err := io.ReadFull(a, body); err != nil {
					b.Close()
					return
				}
				m := append(h, body...)
				mu.Lock()
				fmt.Fprintf(out, "%d %s %x\n", id, dir, m)
				mu.Unlock()
				b.Write(m)
			}
		}
		go pipe("c2s", c, s)
		go pipe("s2c", s, c)
	}
}
