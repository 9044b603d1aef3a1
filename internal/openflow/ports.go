package openflow

// Reserved port numbers, in OpenFlow 1.3's 32-bit space. gvs keeps every
// port number in this space; OpenFlow 1.0's 16-bit reserved ports
// (0xff00-0xffff) map onto 0xffffff00-0xffffffff, as OVS maps them.
const (
	PortMax        uint32 = 0xffffff00
	PortInPort     uint32 = 0xfffffff8
	PortTable      uint32 = 0xfffffff9
	PortNormal     uint32 = 0xfffffffa
	PortFlood      uint32 = 0xfffffffb
	PortAll        uint32 = 0xfffffffc
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
	PortAny        uint32 = 0xffffffff // OFPP_NONE in 1.0
)

// port10 converts a 1.0 port number to the 32-bit space.
func port10(p uint16) uint32 {
	if p >= 0xff00 {
		return uint32(p) + 0xffff0000
	}
	return uint32(p)
}

// toPort10 converts a 32-bit port number to 1.0's 16 bits, if it has one.
func toPort10(p uint32) (uint16, error) {
	switch {
	case p < 0xff00:
		return uint16(p), nil
	case p >= PortMax:
		return uint16(p - 0xffff0000), nil
	}
	return 0, errorf(ErrActBadOutPort, "port %d does not fit OpenFlow 1.0", p)
}

func putPort(w *writer, version uint8, p uint32) error {
	if version != Version10 {
		w.u32(p)
		return nil
	}
	p10, err := toPort10(p)
	w.u16(p10)
	return err
}

func getPort(r *reader, version uint8) uint32 {
	if version != Version10 {
		return r.u32()
	}
	return port10(r.u16())
}
