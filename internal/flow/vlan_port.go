package flow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gvs/internal/packet"
)

const (
	tciAll     = 0xffff
	tciVIDBits = uint64(packet.VLANPresent | packet.VLANVIDMask)
	tciPCPBits = uint64(packet.VLANPresent | packet.VLANPCPMask)
	// dlVLANNone is OpenFlow 1.0's dl_vlan for "no VLAN tag".
	dlVLANNone = 0xffff
)

// matchUntagged makes the match look for frames without a VLAN tag.
func (p *parser) matchUntagged() {
	setUint(&p.value, sVLANTCI, 0)
	setUint(&p.mask, sVLANTCI, tciAll)
}

// wildcardVLAN handles dl_vlan=* and vlan_pcp=*: the VID (or the
// priority) may be anything; if nothing is left to match but the present
// bit, the match no longer asks for a tag at all.
func (p *parser) wildcardVLAN(pcp bool) {
	bits := uint64(packet.VLANVIDMask)
	if pcp {
		bits = uint64(packet.VLANPCPMask)
	}
	v, m := getUint(&p.value, sVLANTCI)&^bits, getUint(&p.mask, sVLANTCI)&^bits
	if m&^uint64(packet.VLANPresent) == 0 {
		v, m = 0, 0
	}
	setUint(&p.value, sVLANTCI, v)
	setUint(&p.mask, sVLANTCI, m)
}

// setVLAN handles the four ways of writing a VLAN match (see the VLAN
// section of ovs-fields(7)). The key's VLANTCI has VLANPresent set for a
// tagged frame and is zero otherwise.
func (p *parser) setVLAN(f *field, s string) error {
	vs, ms, hasMask, err := splitMask(s)
	if err != nil {
		return err
	}
	switch f.kind {
	case kVLANTCI:
		return p.setVLANTCI(vs, ms, hasMask)
	case kVLANVID:
		return p.setVLANVID(vs, ms, hasMask)
	}
	if hasMask {
		return fmt.Errorf("%s cannot be masked (use vlan_tci=value/mask)", f.name)
	}
	v, err := parseUint(vs, 16)
	if err != nil {
		return widthError(err, 16)
	}
	if f.kind == kVLANPCP {
		if v > 7 {
			return errors.New("VLAN priority must be 0 to 7")
		}
		p.setSlot(f, v<<packet.VLANPCPShift|uint64(packet.VLANPresent), tciPCPBits)
		return nil
	}
	switch {
	case v == dlVLANNone:
		p.matchUntagged()
	case v <= uint64(packet.VLANVIDMask):
		p.setSlot(f, v|uint64(packet.VLANPresent), tciVIDBits)
	default:
		return errors.New("VLAN ID must be 0 to 4095, or 0xffff for frames without a tag")
	}
	return nil
}

// setVLANTCI: vlan_tci=value[/mask] over the whole TCI. An exact value
// without the present bit can only be an untagged frame's, whose TCI is 0
// (ovs-ofctl rewrites it so too).
func (p *parser) setVLANTCI(vs, ms string, hasMask bool) error {
	v, err := parseUint(vs, 16)
	if err != nil {
		return widthError(err, 16)
	}
	m := uint64(tciAll)
	if hasMask {
		if m, err = parseUint(ms, 16); err != nil {
			return fmt.Errorf("mask: %w", widthError(err, 16))
		}
	}
	if m == tciAll && v&uint64(packet.VLANPresent) == 0 {
		v = 0
	}
	setUint(&p.value, sVLANTCI, v&m)
	setUint(&p.mask, sVLANTCI, m)
	return nil
}

// setVLANVID: OpenFlow 1.2's vlan_vid, the VID with OFPVID_PRESENT
// (0x1000). An exact value without that bit means "no tag".
func (p *parser) setVLANVID(vs, ms string, hasMask bool) error {
	v, err := parseUint(vs, 13)
	if err != nil {
		return widthError(err, 13)
	}
	f := fields["vlan_vid"]
	if !hasMask {
		if v&uint64(packet.VLANPresent) == 0 {
			p.matchUntagged()
			return nil
		}
		p.setSlot(f, v, tciVIDBits)
		return nil
	}
	m, err := parseUint(ms, 13)
	if err != nil {
		return fmt.Errorf("mask: %w", widthError(err, 13))
	}
	p.setSlot(f, v, m)
	return nil
}

// Reserved OpenFlow port numbers, in OpenFlow 1.0's 16-bit form, which is
// how gvs stores in_port.
const (
	PortInPort     uint32 = 0xfff8
	PortTable      uint32 = 0xfff9
	PortNormal     uint32 = 0xfffa
	PortFlood      uint32 = 0xfffb
	PortAll        uint32 = 0xfffc
	PortController uint32 = 0xfffd
	PortLocal      uint32 = 0xfffe
	PortNone       uint32 = 0xffff // also called ANY
)

var reservedPorts = []struct {
	name string
	port uint32
}{
	{"IN_PORT", PortInPort}, {"TABLE", PortTable}, {"NORMAL", PortNormal},
	{"FLOOD", PortFlood}, {"ALL", PortAll}, {"CONTROLLER", PortController},
	{"LOCAL", PortLocal}, {"ANY", PortNone}, {"NONE", PortNone},
}

// ParsePort reads an OpenFlow port: a decimal number (OpenFlow 1.0's 16-bit
// range, or OpenFlow 1.1's 32-bit reserved range 0xffffff00 and up, which
// maps onto it), a reserved name in any case (LOCAL, CONTROLLER, ...), or a
// name byName resolves (byName may be nil).
func ParsePort(s string, byName func(string) (uint32, bool)) (uint32, error) {
	if name, ok := unquotePortName(s); ok {
		if byName != nil {
			if port, ok := byName(name); ok {
				return port, nil
			}
		}
		return 0, errors.New("unknown port name")
	}
	for _, r := range reservedPorts {
		if strings.EqualFold(s, r.name) {
			return r.port, nil
		}
	}
	if s != "" && isDigits(s, 10) {
		v, err := strconv.ParseUint(s, 10, 32)
		switch {
		case err == nil && v <= 0xffff:
			return uint32(v), nil
		case err == nil && v >= 0xffffff00:
			return uint32(v & 0xffff), nil
		}
		return 0, errors.New("port number out of range (0 to 65535)")
	}
	if byName != nil {
		if port, ok := byName(s); ok {
			return port, nil
		}
	}
	return 0, errors.New("unknown port (expected a port number, a port name, or LOCAL, CONTROLLER, ...)")
}

// FormatPort prints a port as ovs-ofctl does: a reserved name, else the
// name byName gives (byName may be nil), else the number.
func FormatPort(port uint32, byName func(uint32) (string, bool)) string {
	if port >= PortInPort && port < PortNone {
		return reservedPorts[port-PortInPort].name
	}
	if port == PortNone {
		return "ANY"
	}
	if byName != nil {
		if name, ok := byName(port); ok {
			return quotePortName(name)
		}
	}
	return strconv.FormatUint(uint64(port), 10)
}

// quotePortName quotes a name as ovs-ofctl --names does, unless it is a
// letter followed by letters and digits: a name that could be mistaken
// for a number, a reserved port, or that holds a delimiter needs quotes.
func quotePortName(name string) string {
	plain := name != "" && isLetter(name[0])
	for i := 0; i < len(name) && plain; i++ {
		plain = isLetter(name[i]) || (name[i] >= '0' && name[i] <= '9')
	}
	for _, r := range reservedPorts {
		plain = plain && !strings.EqualFold(name, r.name)
	}
	if plain {
		return name
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(name[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// unquotePortName undoes quotePortName for a "quoted" name.
func unquotePortName(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), true
}

func (p *parser) setPort(f *field, s string) error {
	if strings.Contains(s, "/") {
		return errors.New("in_port cannot be masked")
	}
	port, err := ParsePort(s, p.opts.PortByName)
	if err != nil {
		return err
	}
	p.setSlot(f, uint64(port), 0xffffffff)
	return nil
}
