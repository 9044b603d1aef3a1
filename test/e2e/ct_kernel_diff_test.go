package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"gvs/internal/conntrack"
	"gvs/internal/packet"
)

// The differential test of gvs's connection tracker against the Linux
// kernel's: the same packet sequences go through a router namespace whose
// nftables rules count each packet's ct state (and so make the kernel
// track it), and through an in-process conntrack.Tracker with ct(commit)
// (the router confirms every new connection, as a commit does). After
// each packet the ct_state bits and the table (protocol, original tuple,
// TCP state, UNREPLIED/ASSURED) must agree.

var (
	ctdL    = net.ParseIP("192.168.0.2").To4()
	ctdR    = net.ParseIP("10.0.0.2").To4()
	ctdMacL = net.HardwareAddr{0x02, 0xc7, 0, 0, 0, 0x01}
	ctdMacR = net.HardwareAddr{0x02, 0xc7, 0, 0, 0, 0x02}
	ctdMacA = net.HardwareAddr{0x02, 0xc7, 0, 0, 1, 0x01} // router, left side
	ctdMacB = net.HardwareAddr{0x02, 0xc7, 0, 0, 1, 0x02} // router, right side
)

// ctdPkt is one packet of a sequence: from the left (client) or right.
type ctdPkt struct {
	left  bool
	frame []byte
	what  string
}

// ctdConv builds a TCP conversation with sequence numbers that follow the
// bytes sent.
type ctdConv struct {
	lp, rp     uint16
	lseq, rseq uint32
	v6         bool
}

func ctdFrame(left bool, l ...gopacket.SerializableLayer) []byte {
	eth := &layers.Ethernet{SrcMAC: ctdMacL, DstMAC: ctdMacA, EthernetType: layers.EthernetTypeIPv4}
	if _, v6 := l[0].(*layers.IPv6); v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
	}
	if !left {
		eth.SrcMAC, eth.DstMAC = ctdMacR, ctdMacB
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, l...)...); err != nil {
		panic(err)
	}
	return slices.Clone(buf.Bytes())
}

var (
	ctdL6 = net.ParseIP("fd00::2")
	ctdR6 = net.ParseIP("fd01::2")
)

// ctdIP returns the IP layer (IPv6 with v6) of a packet from the left
// or the right, and the same as a network layer for checksums.
func ctdIP(left, v6 bool, proto layers.IPProtocol) (gopacket.SerializableLayer, gopacket.NetworkLayer) {
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: ctdL6, DstIP: ctdR6}
		if !left {
			ip.SrcIP, ip.DstIP = ctdR6, ctdL6
		}
		return ip, ip
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: ctdL, DstIP: ctdR}
	if !left {
		ip.SrcIP, ip.DstIP = ctdR, ctdL
	}
	return ip, ip
}

// seg builds a segment; flags is a string of S, A, F, R, P. advance moves
// the sender's sequence number past the segment.
func (c *ctdConv) seg(left bool, flags string, payload string, advance bool) ctdPkt {
	ip, nl := ctdIP(left, c.v6, layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: layers.TCPPort(c.lp), DstPort: layers.TCPPort(c.rp), Seq: c.lseq, Ack: c.rseq, Window: 8192}
	seqp := &c.lseq
	if !left {
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = layers.TCPPort(c.rp), layers.TCPPort(c.lp), c.rseq, c.lseq
		seqp = &c.rseq
	}
	tcp.SYN = strings.Contains(flags, "S")
	tcp.ACK = strings.Contains(flags, "A")
	tcp.FIN = strings.Contains(flags, "F")
	tcp.RST = strings.Contains(flags, "R")
	tcp.PSH = strings.Contains(flags, "P")
	if !tcp.ACK {
		tcp.Ack = 0
	}
	_ = tcp.SetNetworkLayerForChecksum(nl)
	if advance {
		*seqp += uint32(len(payload))
		if tcp.SYN || tcp.FIN {
			*seqp++
		}
	}
	side := "L"
	if !left {
		side = "R"
	}
	return ctdPkt{left: left, frame: ctdFrame(left, ip, tcp, gopacket.Payload(payload)), what: side + " " + flags}
}

func ctdUDP(left bool, sp, dp uint16) ctdPkt { return ctdUDPv(left, false, sp, dp) }

func ctdUDPv(left, v6 bool, sp, dp uint16) ctdPkt {
	ip, nl := ctdIP(left, v6, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
	_ = udp.SetNetworkLayerForChecksum(nl)
	return ctdPkt{left: left, frame: ctdFrame(left, ip, udp, gopacket.Payload("hello")), what: fmt.Sprintf("udp %v %d>%d", left, sp, dp)}
}

func ctdICMP(left bool, typ, code uint8, id uint16, payload []byte) ctdPkt {
	ip, _ := ctdIP(left, false, layers.IPProtocolICMPv4)
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: id, Seq: 1}
	return ctdPkt{left: left, frame: ctdFrame(left, ip, icmp, gopacket.Payload(payload)), what: fmt.Sprintf("icmp %v type %d", left, typ)}
}

// ctdICMPv6 builds an echo (request 128, reply 129, with id) or an error
// (with the quoted datagram as payload).
func ctdICMPv6(left bool, typ, code uint8, id uint16, quote []byte) ctdPkt {
	ip, nl := ctdIP(left, true, layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	_ = icmp.SetNetworkLayerForChecksum(nl)
	var rest gopacket.SerializableLayer = gopacket.Payload(append([]byte{0, 0, 0, 0}, quote...))
	if typ == 128 || typ == 129 {
		rest = &layers.ICMPv6Echo{Identifier: id, SeqNumber: 1}
	}
	return ctdPkt{left: left, frame: ctdFrame(left, ip, icmp, rest), what: fmt.Sprintf("icmpv6 %v type %d", left, typ)}
}

// ctdSequences are the packet sequences compared.
func ctdSequences() map[string][]ctdPkt {
	seqs := map[string][]ctdPkt{}
	hs := func(c *ctdConv) []ctdPkt {
		return []ctdPkt{c.seg(true, "S", "", true), c.seg(false, "SA", "", true), c.seg(true, "A", "", true)}
	}
	{
		c := &ctdConv{lp: 1024, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		s = append(s, c.seg(true, "PA", "x", true), c.seg(false, "A", "", true),
			c.seg(true, "FA", "", true), c.seg(false, "FA", "", true), c.seg(true, "A", "", true))
		seqs["s7"] = s
	}
	{
		c := &ctdConv{lp: 1025, rp: 2048, lseq: 1000, rseq: 5000}
		syn := c.seg(true, "S", "", true)
		synack := c.seg(false, "SA", "", true)
		s := []ctdPkt{syn, syn, synack, synack, c.seg(true, "A", "", true)}
		data := c.seg(true, "PA", "abcd", true)
		s = append(s, data, c.seg(false, "A", "", true), data, data)
		seqs["retransmissions"] = s
	}
	{
		c := &ctdConv{lp: 1026, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		c.lseq += 5_000_000
		s = append(s, c.seg(true, "PA", "far", false))
		c.lseq -= 5_000_000
		c.rseq -= 100_000
		s = append(s, c.seg(false, "PA", "old", false))
		c.rseq += 100_000
		s = append(s, c.seg(true, "PA", "ok", true), c.seg(false, "A", "", true))
		seqs["out-of-window"] = s
	}
	{
		c := &ctdConv{lp: 1027, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		s = append(s, c.seg(false, "FA", "", true), c.seg(true, "A", "", true), c.seg(true, "FA", "", true), c.seg(false, "A", "", true))
		seqs["fin-from-right"] = s
	}
	{
		c := &ctdConv{lp: 1028, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		fl := c.seg(true, "FA", "", true)
		fr := c.seg(false, "FA", "", true)
		s = append(s, fl, fr, c.seg(true, "A", "", true), c.seg(false, "A", "", true))
		seqs["simultaneous-close"] = s
	}
	{
		c := &ctdConv{lp: 1029, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		s = append(s, c.seg(true, "PA", "data", true), c.seg(false, "A", "", true), c.seg(true, "R", "", false), c.seg(false, "A", "", false))
		seqs["rst"] = s
	}
	{
		c := &ctdConv{lp: 1030, rp: 2048, lseq: 1000, rseq: 5000}
		seqs["rst-answering-syn"] = []ctdPkt{c.seg(true, "S", "", true), c.seg(false, "RA", "", false), c.seg(true, "S", "", false)}
	}
	{
		c := &ctdConv{lp: 1031, rp: 2048, lseq: 1000, rseq: 5000}
		seqs["loose-pickup"] = []ctdPkt{c.seg(true, "PA", "mid", true), c.seg(false, "A", "", true), c.seg(true, "A", "", true)}
	}
	{
		c := &ctdConv{lp: 1032, rp: 2048, lseq: 1000, rseq: 5000}
		seqs["unsolicited-synack-and-bad-flags"] = []ctdPkt{c.seg(false, "SA", "", false), c.seg(true, "SF", "", false), c.seg(true, "F", "", false), c.seg(true, "", "", false)}
	}
	{
		c := &ctdConv{lp: 1033, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		s = append(s, c.seg(true, "FA", "", true), c.seg(false, "FA", "", true), c.seg(true, "A", "", true))
		c.lseq += 100_000
		s = append(s, c.seg(true, "S", "", true), c.seg(false, "SA", "", true), c.seg(true, "A", "", true))
		seqs["reopen-from-time-wait"] = s
	}
	{
		c := &ctdConv{lp: 1034, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		s = append(s, c.seg(true, "PA", "data", true), c.seg(false, "A", "", true))
		c.lseq -= 2
		s = append(s, c.seg(true, "R", "", false))
		c.lseq += 2 + 3
		s = append(s, c.seg(true, "R", "", false))
		c.lseq -= 3
		s = append(s, c.seg(true, "R", "", false))
		seqs["rst-sequence-checks"] = s
	}
	{
		c := &ctdConv{lp: 1035, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		c.rseq += 200_000
		s = append(s, c.seg(true, "A", "", false))
		c.rseq -= 200_000
		s = append(s, c.seg(true, "A", "", false))
		c.rseq -= 200_000
		s = append(s, c.seg(true, "A", "", false))
		c.rseq += 200_000
		s = append(s, c.seg(true, "A", "", false))
		seqs["ack-out-of-range"] = s
	}
	{
		c := &ctdConv{lp: 1036, rp: 2048, lseq: 1000, rseq: 5000}
		sl := c.seg(true, "S", "", true)
		sr := c.seg(false, "S", "", true)
		c.lseq--
		c.rseq--
		sal := c.seg(true, "SA", "", true)
		sar := c.seg(false, "SA", "", true)
		seqs["simultaneous-open"] = []ctdPkt{sl, sr, sar, sal, c.seg(true, "A", "", true), c.seg(false, "A", "", true)}
	}
	{
		c := &ctdConv{lp: 1037, rp: 2048, lseq: 1000, rseq: 5000}
		s := []ctdPkt{c.seg(true, "S", "", true), c.seg(true, "A", "", false), c.seg(false, "A", "", false), c.seg(true, "FA", "", false), c.seg(true, "R", "", false)}
		seqs["syn-sent-oddities"] = s
	}
	{
		c := &ctdConv{lp: 1038, rp: 2048, lseq: 1000, rseq: 5000}
		s := hs(c)
		s = append(s, c.seg(true, "S", "", false), c.seg(false, "A", "", false), c.seg(true, "SA", "", false), c.seg(false, "S", "", false))
		seqs["syn-on-established"] = s
	}
	for name, seq := range ctdMatrix() {
		seqs[name] = seq
	}
	{
		c := &ctdConv{lp: 1040, rp: 2048, lseq: 1000, rseq: 5000, v6: true}
		s := hs(c)
		s = append(s, c.seg(true, "PA", "x", true), c.seg(false, "A", "", true))
		c.lseq += 5_000_000
		s = append(s, c.seg(true, "PA", "far", false))
		c.lseq -= 5_000_000
		s = append(s, c.seg(true, "FA", "", true), c.seg(false, "FA", "", true), c.seg(true, "A", "", true))
		seqs["ipv6-tcp"] = s
	}
	{
		u := ctdUDPv(true, true, 5003, 53)
		quote := u.frame[14 : 14+48]
		seqs["ipv6-udp-icmpv6"] = []ctdPkt{u, ctdUDPv(false, true, 53, 5003), ctdICMPv6(false, 1, 4, 0, quote),
			ctdICMPv6(false, 129, 0, 9, nil), ctdICMPv6(true, 128, 0, 9, nil), ctdICMPv6(false, 129, 0, 9, nil)}
	}
	seqs["udp"] = []ctdPkt{ctdUDP(true, 5000, 53), ctdUDP(true, 5000, 53), ctdUDP(false, 53, 5000), ctdUDP(true, 5000, 53)}
	seqs["icmp-echo"] = []ctdPkt{ctdICMP(false, 0, 0, 77, nil), ctdICMP(true, 8, 0, 77, nil), ctdICMP(false, 0, 0, 77, nil), ctdICMP(true, 8, 0, 77, nil)}
	{
		u := ctdUDP(true, 5001, 53)
		quote := u.frame[14 : 14+28]
		other := ctdUDP(true, 5002, 53).frame[14 : 14+28]
		seqs["icmp-error-for-udp"] = []ctdPkt{u, ctdICMP(false, 3, 3, 0, quote), ctdICMP(false, 3, 3, 0, other)}
	}
	return seqs
}

// ctdCounterRules are the nft rules, in order, and the ct_state each
// one's counter stands for.
var ctdCounterRules = []struct {
	rule  string
	state uint8
}{
	{"ct state invalid counter", conntrack.StateTrk | conntrack.StateInv},
	{"ct state new counter", conntrack.StateTrk | conntrack.StateNew},
	{"ct state established ct direction original counter", conntrack.StateTrk | conntrack.StateEst},
	{"ct state established ct direction reply counter", conntrack.StateTrk | conntrack.StateEst | conntrack.StateRpl},
	{"ct state related ct direction original counter", conntrack.StateTrk | conntrack.StateRel},
	{"ct state related ct direction reply counter", conntrack.StateTrk | conntrack.StateRel | conntrack.StateRpl},
	{"ct state untracked counter", conntrack.StateTrk},
}

var ctdPacketsRE = regexp.MustCompile(`packets (\d+)`)

func ctdCounters(l *netLab) []int {
	out := l.mustExec("gvsctdr", "nft", "list", "chain", "inet", "gvsctd", "fw")
	var n []int
	for _, m := range ctdPacketsRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[1])
		n = append(n, v)
	}
	return n
}

// ctdKernelTable returns conntrack -L's entries in canonical form.
func ctdKernelTable(l *netLab) []string {
	out4, _ := l.exec("gvsctdr", "conntrack", "-L", "-f", "ipv4")
	out6, _ := l.exec("gvsctdr", "conntrack", "-L", "-f", "ipv6")
	out := out4 + "\n" + out6
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !slices.Contains([]string{"tcp", "udp", "icmp", "icmpv6"}, f[0]) {
			continue
		}
		state := "-"
		if f[0] == "tcp" {
			state = f[3]
		}
		kv := map[string]string{}
		var flags []string
		for _, w := range f[3:] {
			if strings.HasPrefix(w, "[") {
				flags = append(flags, w)
				continue
			}
			if k, v, ok := strings.Cut(w, "="); ok {
				if _, seen := kv[k]; !seen {
					kv[k] = v
				}
			}
		}
		orig := kv["src"] + ">" + kv["dst"] + " " + kv["sport"] + ">" + kv["dport"]
		if f[0] == "icmp" || f[0] == "icmpv6" {
			orig = kv["src"] + ">" + kv["dst"] + " id " + kv["id"]
		}
		rows = append(rows, f[0]+" "+orig+" "+state+" "+strings.Join(flags, ""))
	}
	slices.Sort(rows)
	return rows
}

func ctdGvsTable(tr *conntrack.Tracker, now int64) []string {
	var rows []string
	tr.DumpAt(nil, true, now, func(e conntrack.Entry) {
		o := e.Orig
		orig := fmt.Sprintf("%v>%v %d>%d", o.Src, o.Dst, o.SrcPort, o.DstPort)
		if o.Proto == packet.ProtoICMPv4 || o.Proto == packet.ProtoICMPv6 {
			orig = fmt.Sprintf("%v>%v id %d", o.Src, o.Dst, o.ICMPID)
		}
		state := "-"
		if o.Proto == packet.ProtoTCP {
			state = conntrack.KernelTCPStateName(e.TCPState)
		}
		flags := ""
		if e.Status&conntrack.StatusSeenReply == 0 {
			flags += "[UNREPLIED]"
		}
		if e.Status&conntrack.StatusAssured != 0 {
			flags += "[ASSURED]"
		}
		rows = append(rows, conntrack.ProtoString(o.Proto)+" "+orig+" "+state+" "+flags)
	})
	slices.Sort(rows)
	return rows
}

func ctdStateString(s uint8) string {
	names := []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}
	out := ""
	for i, n := range names {
		if s&(1<<i) != 0 {
			out += "+" + n
		}
	}
	return out
}

// TestConntrackKernelDifferential compares gvs's tracker with the kernel's
// packet by packet.
func TestConntrackKernelDifferential(t *testing.T) {
	l := newNetLab(t)
	requireTool(t, "nft", "conntrack")
	const r, a, b = "gvsctdr", "gvsctda", "gvsctdb"
	for _, ns := range []string{r, a, b} {
		l.netns(ns)
	}
	l.veth("gvsctdra", "gvsctda0", a)
	l.veth("gvsctdrb", "gvsctdb0", b)
	for dev, mac := range map[string]net.HardwareAddr{"gvsctdra": ctdMacA, "gvsctdrb": ctdMacB} {
		l.must("ip", "link", "set", dev, "netns", r)
		l.mustExec(r, "ip", "link", "set", dev, "address", mac.String())
	}
	l.configure(r, "gvsctdra", "192.168.0.1/24")
	l.configure(r, "gvsctdrb", "10.0.0.1/24")
	l.mustExec(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.gvsctdra.rp_filter=0", "net.ipv4.conf.gvsctdrb.rp_filter=0")
	l.mustExec(r, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.gvsctdra.disable_ipv6=0",
		"net.ipv6.conf.gvsctdrb.disable_ipv6=0", "net.ipv6.conf.all.forwarding=1")
	l.mustExec(r, "ip", "-6", "addr", "add", "fd00::1/64", "dev", "gvsctdra", "nodad")
	l.mustExec(r, "ip", "-6", "addr", "add", "fd01::1/64", "dev", "gvsctdrb", "nodad")
	l.mustExec(r, "ip", "-6", "neigh", "replace", "fd00::2", "lladdr", ctdMacL.String(), "dev", "gvsctdra", "nud", "permanent")
	l.mustExec(r, "ip", "-6", "neigh", "replace", "fd01::2", "lladdr", ctdMacR.String(), "dev", "gvsctdrb", "nud", "permanent")
	l.mustExec(r, "ip", "neigh", "replace", "192.168.0.2", "lladdr", ctdMacL.String(), "dev", "gvsctdra", "nud", "permanent")
	l.mustExec(r, "ip", "neigh", "replace", "10.0.0.2", "lladdr", ctdMacR.String(), "dev", "gvsctdrb", "nud", "permanent")
	rules := "table inet gvsctd {\n chain fw {\n  type filter hook forward priority 0; policy accept;\n"
	for _, c := range ctdCounterRules {
		rules += "  " + c.rule + "\n"
	}
	rules += " }\n}\n"
	rulesFile := filepath.Join(t.TempDir(), "ct.nft")
	if err := os.WriteFile(rulesFile, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	l.mustExec(r, "nft", "-f", rulesFile)
	loose := strings.TrimSpace(l.mustExec(r, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose"))
	liberal := strings.TrimSpace(l.mustExec(r, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_be_liberal"))
	if loose != "1" || liberal != "0" {
		t.Fatalf("kernel tracker not at its defaults: tcp_loose=%s tcp_be_liberal=%s", loose, liberal)
	}

	seqs := ctdSequences()
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range seqs {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			l.mustExec(r, "conntrack", "-F")
			tr := conntrack.New(conntrack.Config{})
			for i, p := range seqs[name] {
				before := ctdCounters(l)
				dev, ns := "gvsctda0", a
				if !p.left {
					dev, ns = "gvsctdb0", b
				}
				l.inject(ns, dev, p.frame)
				kstate := ctdWaitCounter(t, l, before)
				now := conntrack.Monotonic()
				var key packet.Key
				var off packet.Offsets
				if err := packet.Parse(p.frame, 1, &key, &off); err != nil {
					t.Fatal(err)
				}
				res := tr.Execute(p.frame, &key, &off, &conntrack.Action{Commit: true}, now)
				gstate := res.State &^ (conntrack.StateSNAT | conntrack.StateDNAT)
				ktab, gtab := ctdKernelTable(l), ctdGvsTable(tr, now)
				if gstate != kstate || !slices.Equal(ktab, gtab) {
					t.Errorf("packet %d (%s): kernel %s %q, gvs %s %q", i, p.what, ctdStateString(kstate), ktab, ctdStateString(gstate), gtab)
				} else {
					t.Logf("packet %d (%s): %s %q", i, p.what, ctdStateString(kstate), ktab)
				}
			}
		})
	}
}

// ctdWaitCounter waits until one of the counters moved past before and
// returns the ct_state it stands for.
func ctdWaitCounter(t *testing.T, l *netLab, before []int) uint8 {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		after := ctdCounters(l)
		for i := range min(len(after), len(before), len(ctdCounterRules)) {
			if after[i] > before[i] {
				return ctdCounterRules[i].state
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router did not forward the packet (counters %v -> %v)", before, after)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ctdMatrix: every TCP state the tracker can be in, met by every kind of
// segment (SYN, SYN-ACK, FIN, ACK, RST, none) from either side, with
// sequence numbers a real peer would use.
func ctdMatrix() map[string][]ctdPkt {
	prefixes := []struct {
		state string
		steps []string // "L S": side and flags
	}{
		{"SYN_SENT", []string{"L S"}},
		{"SYN_SENT2", []string{"L S", "R S"}},
		{"SYN_RECV", []string{"L S", "R SA"}},
		{"ESTABLISHED", []string{"L S", "R SA", "L A"}},
		{"FIN_WAIT", []string{"L S", "R SA", "L A", "L FA"}},
		{"CLOSE_WAIT", []string{"L S", "R SA", "L A", "L FA", "R A"}},
		{"LAST_ACK", []string{"L S", "R SA", "L A", "L FA", "R FA"}},
		{"TIME_WAIT", []string{"L S", "R SA", "L A", "L FA", "R FA", "L A"}},
		{"CLOSE", []string{"L S", "R SA", "L A", "L R"}},
	}
	probes := []string{"S", "SA", "FA", "A", "R", "P"}
	out := map[string][]ctdPkt{}
	port := uint16(3000)
	for _, pf := range prefixes {
		for _, side := range []string{"L", "R"} {
			for _, pr := range probes {
				port++
				c := &ctdConv{lp: port, rp: 2048, lseq: 1000, rseq: 5000}
				var seq []ctdPkt
				for _, st := range pf.steps {
					sd, fl, _ := strings.Cut(st, " ")
					if pf.state == "SYN_SENT2" && sd == "R" {
						// The simultaneous SYN carries no ACK.
						seq = append(seq, c.seg(false, fl, "", true))
						continue
					}
					seq = append(seq, c.seg(sd == "L", fl, "", true))
				}
				seq = append(seq, c.seg(side == "L", pr, "", false))
				out["matrix-"+pf.state+"-"+side+"-"+pr] = seq
			}
		}
	}
	return out
}
