package span

import (
	"fmt"
	"strconv"
	"strings"

	"gvs/internal/packet"
)

// Source is an interface a session copies, and which of its packets.
type Source struct {
	Dev string
	Dir Direction
}

func (s Source) String() string { return s.Dev + ":" + s.Dir.String() }

// ParseSource reads DEV, DEV:in, DEV:out or DEV:both.
func ParseSource(s string) (Source, error) {
	dev, dir, _ := strings.Cut(s, ":")
	d, err := ParseDirection(dir)
	if err != nil {
		return Source{}, fmt.Errorf("source %q: %w", s, err)
	}
	if err := checkDevName(dev); err != nil {
		return Source{}, fmt.Errorf("source %q: %w", s, err)
	}
	return Source{Dev: dev, Dir: d}, nil
}

// checkDevName accepts what Linux accepts as an interface name.
func checkDevName(dev string) error {
	if dev == "" || len(dev) > 15 || dev == "." || dev == ".." || strings.ContainsAny(dev, "/: \t\n") {
		return fmt.Errorf("%q is not an interface name (1 to 15 characters, no '/', ':' or white space)", dev)
	}
	return nil
}

// DestKind is what a destination is.
type DestKind uint8

const (
	DestDev    DestKind = iota // dev:IFACE[,vlan=VID]
	DestPcap                   // pcap:PATH
	DestJSON                   // json:PATH
	DestTunnel                 // gre:, erspan:, vxlan: or geneve:REMOTE[,OPTION=N...]
)

// Dest is where a session sends its copies.
type Dest struct {
	Kind   DestKind
	Target string // the device or the file, as written
	VLAN   int    // dev: the 802.1Q VID to push, -1 for none
	Text   string // the destination as written
	// Tunnel is a tunnel destination's outer headers (Src unset: the
	// source address of the route to the remote).
	Tunnel packet.TunnelConfig
}

func (d Dest) String() string { return d.Text }

// ParseDest reads dev:IFACE, dev:IFACE,vlan=VID, pcap:PATH, json:PATH,
// or a tunnel: gre:REMOTE[,key=K], erspan:REMOTE[,ver=1|2,idx=N,key=S],
// vxlan:REMOTE[,vni=N], geneve:REMOTE[,vni=N].
func ParseDest(s string) (Dest, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Dest{}, fmt.Errorf("destination %q: written KIND:TARGET, with KIND dev, pcap, json, gre, erspan, vxlan or geneve (e.g. dev:eth1, pcap:span.pcapng, gre:192.0.2.9)", s)
	}
	d := Dest{Target: rest, VLAN: -1, Text: s}
	switch kind {
	case "dev":
		dev, opts, _ := strings.Cut(rest, ",")
		if err := checkDevName(dev); err != nil {
			return Dest{}, fmt.Errorf("destination %q: %w", s, err)
		}
		d.Kind, d.Target = DestDev, dev
		if opts != "" {
			v, ok := strings.CutPrefix(opts, "vlan=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n < 0 || n > 4095 {
				return Dest{}, fmt.Errorf("destination %q: %q: the only option of dev: is vlan=VID, VID from 0 to 4095", s, opts)
			}
			d.VLAN = n
		}
	case "pcap", "json":
		if rest == "" || len(rest) > 4096 || strings.ContainsRune(rest, 0) {
			return Dest{}, fmt.Errorf("destination %q: %s: needs a file name (inside gvsd's capture directory)", s, kind)
		}
		d.Kind = DestPcap
		if kind == "json" {
			d.Kind = DestJSON
		}
	case "gre", "erspan", "vxlan", "geneve":
		t, err := parseTunnel(kind, rest)
		if err != nil {
			return Dest{}, fmt.Errorf("destination %q: %w", s, err)
		}
		d.Kind, d.Tunnel, d.Target = DestTunnel, t, t.Dst.String()
	default:
		return Dest{}, fmt.Errorf("destination %q: unknown kind %q: dev, pcap, json, gre, erspan, vxlan or geneve", s, kind)
	}
	return d, nil
}

// Config is a span session as vswitchd wants it.
type Config struct {
	Name     string
	Sources  []Source
	Rules    []Rule
	Snaplen  int  // bytes kept of each copy, 0 for all
	Metadata bool // records instead of packets (json: destinations)
	Mark     uint32
	HasMark  bool
	Dests    []Dest
}

// MetadataSnaplen is what the filter keeps of a packet whose metadata
// only is recorded: the headers, through TCP's options.
const MetadataSnaplen = 192

// Validate checks what no destination or source can tell by itself:
// counts, loops, and that --metadata and json: go together.
func (c *Config) Validate() error {
	switch {
	case c.Name == "" || len(c.Name) > MaxNameLen:
		return fmt.Errorf("span name %q: 1 to %d characters", c.Name, MaxNameLen)
	case len(c.Sources) == 0:
		return fmt.Errorf("span %s: no source", c.Name)
	case len(c.Sources) > MaxSources:
		return fmt.Errorf("span %s: %d sources, at most %d", c.Name, len(c.Sources), MaxSources)
	case len(c.Dests) == 0:
		return fmt.Errorf("span %s: no destination", c.Name)
	case len(c.Dests) > MaxDests:
		return fmt.Errorf("span %s: %d destinations, at most %d", c.Name, len(c.Dests), MaxDests)
	case len(c.Rules) > MaxRules:
		return fmt.Errorf("span %s: %d rules, at most %d", c.Name, len(c.Rules), MaxRules)
	case c.Snaplen != 0 && (c.Snaplen < 14 || c.Snaplen > MaxSnaplen):
		return fmt.Errorf("span %s: snaplen %d: from 14 to %d bytes", c.Name, c.Snaplen, MaxSnaplen)
	case c.Snaplen != 0 && c.Metadata:
		return fmt.Errorf("span %s: snaplen and metadata exclude each other: metadata records keep no packet", c.Name)
	}
	srcs := map[string]bool{}
	for _, s := range c.Sources {
		if srcs[s.Dev] {
			return fmt.Errorf("span %s: source %s given twice", c.Name, s.Dev)
		}
		srcs[s.Dev] = true
	}
	seen := map[string]bool{}
	for _, d := range c.Dests {
		if seen[d.Text] {
			return fmt.Errorf("span %s: destination %s given twice", c.Name, d.Text)
		}
		seen[d.Text] = true
		switch {
		case d.Kind == DestDev && srcs[d.Target]:
			return fmt.Errorf("span %s: destination %s is also a source: its copies would be copied again (a loop)", c.Name, d.Text)
		case d.Kind == DestJSON && !c.Metadata:
			return fmt.Errorf("span %s: destination %s: json: writes metadata records: add --metadata (metadata=true)", c.Name, d.Text)
		case d.Kind != DestJSON && c.Metadata:
			return fmt.Errorf("span %s: destination %s: --metadata writes records, which only json: destinations take", c.Name, d.Text)
		}
	}
	return nil
}

// CheckCompiles compiles the rules for each direction the sources use,
// as Start will: rules that each pass may together make a program
// longer than the kernel takes, which a commit must refuse. It costs up
// to a millisecond, so it is for a configuration that changed, not for
// every reading of one.
func (c *Config) CheckCompiles() error {
	done := map[Direction]bool{}
	for _, s := range c.Sources {
		if done[s.Dir] {
			continue
		}
		done[s.Dir] = true
		if _, err := Compile(c.FilterRules(), s.Dir, c.snaplen()); err != nil {
			return fmt.Errorf("span %s: %w", c.Name, err)
		}
	}
	return nil
}

// snaplen is what the kernel filter keeps of each selected packet.
func (c *Config) snaplen() uint32 {
	switch {
	case c.Metadata:
		return MetadataSnaplen
	case c.Snaplen > 0:
		return uint32(c.Snaplen)
	}
	return DefaultSnap
}

// Key sums up the configuration, so that a reconciler restarts a session
// only when it changed.
func (c *Config) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d|%v|%v:%d|", c.Name, c.Snaplen, c.Metadata, c.HasMark, c.Mark)
	for _, s := range c.Sources {
		b.WriteString(s.String() + ";")
	}
	b.WriteString("|")
	for _, r := range c.Rules {
		b.WriteString(r.Text + ";")
	}
	b.WriteString("|")
	for _, d := range c.Dests {
		b.WriteString(d.Text + ";")
	}
	return b.String()
}
