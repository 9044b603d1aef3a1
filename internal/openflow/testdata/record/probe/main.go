// Command probe replays requests ("name version hex" lines on stdin, the
// first columns of ../../ovs_errors.txt) against a real ovs-vswitchd
// management socket, one connection each, and prints each line with the
// reply (an error, or the barrier reply that follows an accepted request).
// Usage: probe MGMT_SOCKET < cases
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func read(c net.Conn) ([]byte, error) {
	h := make([]byte, 8)
	if _, err := io.ReadFull(c, h); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(h[2:]))
	copy(b, h)
	_, err := io.ReadFull(c, b[8:])
	return b, err
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p := strings.Fields(sc.Text())
		req, _ := hex.DecodeString(p[2])
		c, err := net.Dial("unix", os.Args[1])
		if err != nil {
			panic(err)
		}
		v := map[string]byte{"1": 1, "4": 4}[p[1]]
		c.Write([]byte{v, 0, 0, 8, 0, 0, 0, 1})
		read(c) // hello
		c.Write(req)
		// barrier after, so that "no reply" shows as a barrier reply
		bt := byte(18)
		if v == 4 {
			bt = 20
		}
		c.Write([]byte{v, bt, 0, 8, 0, 0, 0, 0x99})
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		rep, err := read(c)
		if err != nil {
			fmt.Printf("%s %s %s closed:%v\n", p[0], p[1], p[2], err)
		} else {
			fmt.Printf("%s %s %s %x\n", p[0], p[1], p[2], rep)
		}
		c.Close()
	}
}
