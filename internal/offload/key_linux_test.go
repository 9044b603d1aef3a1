package offload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// loopbackIfindex is the device of a tc program's test runs.
const loopbackIfindex = 1

// testInPort is the in_port the tests' port record gives keys.
const testInPort = 7

func loadForTest(t testing.TB) *Kernel {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	k, err := Load(func() int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// classify runs the socket filter's decision on frame, as received on
// the loopback device, and returns it with the key the program built.
// The run is pinned to CPU 0, whose scratch then holds that key: another
// CPU's may hold an older frame with the same first bytes.
func classify(t testing.TB, k *Kernel, frame []byte) (int, []byte) {
	t.Helper()
	var ret uint32
	var err error
	onCPU0(t, func() { ret, err = k.classifyProg.Run(&ebpf.RunOptions{Data: frame}) })
	if errors.Is(err, unix.EINVAL) {
		// The kernel refuses test runs of some frames (an IPv4 or
		// IPv6 ethertype with less than an IP header after it).
		return -1, nil
	}
	if err != nil {
		t.Fatalf("test run of %d bytes: %v", len(frame), err)
	}
	if ret == 2 {
		return 2, nil // not keyed: the scratch may hold anything
	}
	var per [][]byte
	if err := k.scratch.Lookup(uint32(0), &per); err != nil {
		t.Fatalf("scratch: %v", err)
	}
	s := per[0]
	n := min(len(frame), scratchBufLen)
	if !bytes.Equal(s[scratchBufOffset:scratchBufOffset+n], frame[:n]) {
		t.Fatalf("CPU 0's scratch does not hold the frame %x", frame)
	}
	return int(ret), s[:keySize]
}

// onCPU0 runs f on CPU 0, whose per-CPU scratch the test then reads.
func onCPU0(t testing.TB, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, cpu0 unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	cpu0.Set(0)
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		t.Fatalf("sched_setaffinity: %v", err)
	}
	defer unix.SchedSetaffinity(0, &old)
	f()
}

// Sizes of the program's scratch: the key (64 words) comes first.
const (
	keySize          = 368
	scratchBufOffset = 64 * 8
	scratchBufLen    = 128
)

// goKey is what the datapath's cache key holds for frame: packet.Parse's
// key followed by the outer VLAN TPID, which these untagged or
// in-frame-tagged frames leave 0 where the program keys them.
func goKey(frame []byte) []byte {
	var k packet.Key
	_ = packet.Parse(frame, testInPort, &k, nil)
	b := make([]byte, keySize)
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(&k)), unsafe.Sizeof(k)))
	return b
}

// TestKeyLayoutMatchesGo checks bpf/layout.h's offsets against
// packet.Key.
func TestKeyLayoutMatchesGo(t *testing.T) {
	src, err := os.ReadFile("bpf/layout.h")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{
		"K_INPORT": "InPort", "K_IPV6LABEL": "IPv6Label", "K_VLANTCI": "VLANTCI", "K_DLTYPE": "DlType",
		"K_TPSRC": "TpSrc", "K_TPDST": "TpDst", "K_TCPFLAGS": "TCPFlags", "K_ARPOP": "ArpOp",
		"K_NWPROTO": "NwProto", "K_NWTOS": "NwTOS", "K_NWTTL": "NwTTL", "K_DLSRC": "DlSrc", "K_DLDST": "DlDst",
		"K_NWSRC": "NwSrc", "K_NWDST": "NwDst", "K_IPV6SRC": "IPv6Src", "K_IPV6DST": "IPv6Dst",
		"K_ARPSHA": "ArpSha", "K_ARPTHA": "ArpTha", "K_ARPSPA": "ArpSpa", "K_ARPTPA": "ArpTpa",
		"K_TUNID": "TunID", "K_TUNFLAGS": "TunFlags", "K_TUNTOS": "TunTOS", "K_TUNTTL": "TunTTL",
		"K_TUNSRC": "TunSrc", "K_TUNDST": "TunDst",
	}
	defs := parseDefines(t, string(src))
	rt := reflect.TypeOf(packet.Key{})
	for def, name := range fields {
		f, ok := rt.FieldByName(name)
		if !ok {
			t.Fatalf("packet.Key has no field %s", name)
		}
		if got, ok := defs[def]; !ok || got != int(f.Offset) {
			t.Errorf("layout.h: %s = %d, packet.Key.%s is at %d", def, got, name, f.Offset)
		}
	}
	if defs["K_VLANTPID"] != int(unsafe.Sizeof(packet.Key{})) {
		t.Errorf("layout.h: K_VLANTPID = %d, want packet.Key's size %d", defs["K_VLANTPID"], unsafe.Sizeof(packet.Key{}))
	}
	if defs["KEY_WORDS"]*8 != keySize {
		t.Errorf("layout.h: KEY_WORDS = %d, want %d", defs["KEY_WORDS"], keySize/8)
	}
}

func parseDefines(t *testing.T, src string) map[string]int {
	defs := map[string]int{}
	for _, line := range bytes.Split([]byte(src), []byte("\n")) {
		var name string
		var v int
		if n, _ := fmt.Sscanf(string(line), "#define %s %d", &name, &v); n == 2 {
			defs[name] = v
		}
	}
	if len(defs) == 0 {
		t.Fatal("layout.h: no #define read")
	}
	return defs
}

// TestKeyMatchesParse checks, frame by frame, that the program keys
// exactly the frames it says it keys as packet.Parse does, and that it
// keys the common ones.
func TestKeyMatchesParse(t *testing.T) {
	k := loadForTest(t)
	registerLoopback(t, k)
	keyed := 0
	for _, c := range seedFrames() {
		ret, key := classify(t, k, c.frame)
		if ret < 0 {
			t.Fatalf("%s: the kernel refused a test run", c.name)
		}
		if (ret != 2) != c.keyed {
			t.Errorf("%s: classify returned %d, want keyed=%v", c.name, ret, c.keyed)
		}
		if ret == 2 {
			continue
		}
		keyed++
		if want := goKey(c.frame); !bytes.Equal(key, want) {
			t.Errorf("%s: key differs from packet.Parse's\n bpf %x\n go  %x", c.name, key, want)
		}
	}
	if keyed == 0 {
		t.Fatal("no frame keyed")
	}
}

// FuzzKeyMatchesParse: for any frame the program keys, its key is
// packet.Parse's.
func FuzzKeyMatchesParse(f *testing.F) {
	for _, c := range seedFrames() {
		f.Add(c.frame)
	}
	k := loadForTest(f)
	registerLoopback(f, k)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) <= 14 || len(frame) > 1500 {
			return // a test run needs more than an Ethernet header; MTU-sized at most
		}
		ret, key := classify(t, k, frame)
		if ret < 0 || ret == 2 {
			return
		}
		if want := goKey(frame); !bytes.Equal(key, want) {
			t.Fatalf("key differs from packet.Parse's\n bpf %x\n go  %x", key, want)
		}
	})
}

func registerLoopback(t testing.TB, k *Kernel) {
	t.Helper()
	if err := k.ports.Update(uint32(loopbackIfindex), portRec{InPort: testInPort}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

type seedFrame struct {
	name  string
	frame []byte
	keyed bool
}

var (
	macA = []byte{0x02, 0, 0, 0, 0, 1}
	macB = []byte{0x02, 0, 0, 0, 0, 2}
)

func eth(typ uint16, payload ...[]byte) []byte {
	b := append(append([]byte{}, macB...), macA...)
	b = binary.BigEndian.AppendUint16(b, typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func ipv4(proto uint8, flagsFrag uint16, opts []byte, l4 []byte) []byte {
	hl := 20 + len(opts)
	b := []byte{byte(0x40 | hl/4), 0xb8, 0, 0, 0x12, 0x34, 0, 0, 61, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(l4)))
	binary.BigEndian.PutUint16(b[6:], flagsFrag)
	return append(append(b, opts...), l4...)
}

func ipv6(nh uint8, l4 []byte) []byte {
	b := make([]byte, 40)
	binary.BigEndian.PutUint32(b, 6<<28|0x2a<<20|0x12345)
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6], b[7] = nh, 64
	b[8], b[23] = 0xfd, 1
	b[24], b[39] = 0xfd, 2
	return append(b, l4...)
}

func tcp(flags uint16, dataOff byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, 40000)
	binary.BigEndian.PutUint16(b[2:], 80)
	binary.BigEndian.PutUint16(b[12:], uint16(dataOff)<<12|flags)
	return b
}

func udp() []byte { return []byte{0x9c, 0x40, 0, 53, 0, 12, 0, 0, 'h', 'i', '!', '!'} }

func icmp(typ, code byte) []byte { return []byte{typ, code, 0, 0, 0, 1, 0, 1} }

func arp(op uint16) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, 0}
	binary.BigEndian.PutUint16(b[6:], op)
	b = append(b, macA...)
	b = append(b, 10, 0, 0, 1)
	b = append(b, macB...)
	return append(b, 10, 0, 0, 2)
}

func seedFrames() []seedFrame {
	pad := make([]byte, 20)
	ndTarget := append(icmp(135, 0), make([]byte, 16)...)
	hbh := append([]byte{6, 0, 1, 4, 0, 0, 0, 0}, tcp(0x18, 5)...)
	return []seedFrame{
		{"tcp", eth(0x0800, ipv4(6, 0x4000, nil, tcp(0x18, 5))), true},
		{"tcp syn", eth(0x0800, ipv4(6, 0, nil, tcp(0x02, 5))), true},
		{"tcp options", eth(0x0800, ipv4(6, 0, nil, append(tcp(0x10, 6), 1, 1, 1, 1))), true},
		{"tcp bad offset", eth(0x0800, ipv4(6, 0, nil, tcp(0x10, 9))), false},
		{"tcp truncated", eth(0x0800, ipv4(6, 0, nil, tcp(0x10, 5)[:12])), false},
		{"ip options", eth(0x0800, ipv4(17, 0, []byte{1, 1, 1, 0}, udp())), true},
		{"udp", eth(0x0800, ipv4(17, 0, nil, udp())), true},
		{"udp padded", eth(0x0800, ipv4(17, 0, nil, udp()), pad), true},
		{"sctp", eth(0x0800, ipv4(132, 0, nil, append(udp(), 0, 0, 0, 0))), true},
		{"icmp", eth(0x0800, ipv4(1, 0, nil, icmp(8, 0))), true},
		{"igmp", eth(0x0800, ipv4(2, 0, nil, icmp(0x11, 0))), true},
		{"gre", eth(0x0800, ipv4(47, 0, nil, []byte{0, 0, 0x65, 0x58})), true},
		{"first fragment", eth(0x0800, ipv4(17, 0x2000, nil, udp())), false},
		{"later fragment", eth(0x0800, ipv4(17, 0x0010, nil, udp())), false},
		{"ip truncated", eth(0x0800, ipv4(17, 0, nil, udp())[:24]), false},
		{"ipv6 tcp", eth(0x86dd, ipv6(6, tcp(0x18, 5))), true},
		{"ipv6 udp", eth(0x86dd, ipv6(17, udp())), true},
		{"ipv6 echo", eth(0x86dd, ipv6(58, icmp(128, 0))), true},
		{"ipv6 nd", eth(0x86dd, ipv6(58, ndTarget)), false},
		{"ipv6 hop-by-hop", eth(0x86dd, ipv6(0, hbh)), false},
		{"ipv6 no next", eth(0x86dd, ipv6(59, nil)), true},
		{"arp request", eth(0x0806, arp(1)), true},
		{"arp big op", eth(0x0806, arp(0x1ff)), true},
		{"rarp", eth(0x8035, arp(3)), true},
		{"arp not ipv4", eth(0x0806, append([]byte{0, 6}, arp(1)[2:]...)), true},
		{"arp truncated", eth(0x0806, arp(1)[:20]), false},
		{"vlan in frame", eth(0x8100, []byte{0, 10, 8, 0}, ipv4(17, 0, nil, udp())), false},
		{"llc", eth(0x0026, []byte{0x42, 0x42, 3, 0, 0}), false},
		{"mpls", eth(0x8847, []byte{0, 1, 0x41, 64}), false},
		{"lldp", eth(0x88cc, pad), true},
		{"unknown type, short", eth(0x1234, []byte{0x45}), true},
	}
}
