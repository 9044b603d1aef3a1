package packet

import "encoding/binary"

// Ethertypes gvs recognises while parsing.
const (
	EtherTypeIPv4      uint16 = 0x0800
	EtherTypeARP       uint16 = 0x0806
	EtherTypeRARP      uint16 = 0x8035
	EtherTypeVLAN      uint16 = 0x8100 // 802.1Q customer tag
	EtherTypeQinQ      uint16 = 0x88a8 // 802.1ad service tag
	EtherTypeIPv6      uint16 = 0x86dd
	EtherTypeMPLS      uint16 = 0x8847
	EtherTypeMPLSMcast uint16 = 0x8848

	// EtherTypeMin is the smallest value that is an ethertype; smaller
	// values in the type field are an 802.3 length.
	EtherTypeMin uint16 = 0x0600
	// EtherTypeNone is the flow key's dl_type for a frame whose type field
	// is a length not followed by an LLC/SNAP header that names a type
	// (OpenFlow's OFP_DL_TYPE_NOT_ETH_TYPE).
	EtherTypeNone uint16 = 0x05ff
)

// Header lengths.
const (
	EthernetLen = 14 // destination, source, type
	MACLen      = 6
	VLANTagLen  = 4 // TPID and TCI
	// llcSNAPLen is an 802.2 LLC header (DSAP, SSAP, control) followed by a
	// SNAP header (3-byte organisation, 2-byte type).
	llcSNAPLen = 8
)

// Ethernet is a view of an Ethernet II header: at least EthernetLen bytes.
type Ethernet []byte

// Dst returns the destination MAC address.
func (b Ethernet) Dst() [6]byte { return [6]byte(b[0:6]) }

// Src returns the source MAC address.
func (b Ethernet) Src() [6]byte { return [6]byte(b[6:12]) }

// Type returns the type field right after the addresses: an ethertype, a
// VLAN TPID, or an 802.3 length.
func (b Ethernet) Type() uint16 { return binary.BigEndian.Uint16(b[12:14]) }

// SetDst sets the destination MAC address.
func (b Ethernet) SetDst(mac [6]byte) { copy(b[0:6], mac[:]) }

// SetSrc sets the source MAC address.
func (b Ethernet) SetSrc(mac [6]byte) { copy(b[6:12], mac[:]) }

// SetType sets the type field.
func (b Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(b[12:14], t) }

// IsMulticast reports whether the destination is a group address
// (broadcast included): the I/G bit of the first octet.
func (b Ethernet) IsMulticast() bool { return b[0]&1 != 0 }

// VLAN TCI bits. The flow key stores a tag's TCI with VLANPresent set, so
// that a zero TCI means "no tag" and a priority tag (VID 0) is still seen;
// on the wire this bit is the DEI/CFI bit, which OpenFlow ignores.
const (
	VLANPresent  uint16 = 0x1000
	VLANVIDMask  uint16 = 0x0fff
	VLANPCPMask  uint16 = 0xe000
	VLANPCPShift        = 13
)

// VLANTag is a view of an 802.1Q/802.1ad tag as it sits in a frame: the
// TPID followed by the TCI, VLANTagLen bytes.
type VLANTag []byte

// TPID returns the tag protocol identifier (0x8100 or 0x88a8).
func (b VLANTag) TPID() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// TCI returns the tag control information exactly as on the wire.
func (b VLANTag) TCI() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// VID returns the 12-bit VLAN identifier.
func (b VLANTag) VID() uint16 { return b.TCI() & VLANVIDMask }

// PCP returns the 3-bit priority.
func (b VLANTag) PCP() uint8 { return uint8(b.TCI() >> VLANPCPShift) }

// SetTPID sets the tag protocol identifier.
func (b VLANTag) SetTPID(tpid uint16) { binary.BigEndian.PutUint16(b[0:2], tpid) }

// SetTCI sets the tag control information as it goes on the wire.
func (b VLANTag) SetTCI(tci uint16) { binary.BigEndian.PutUint16(b[2:4], tci) }

// IsVLANTPID reports whether an ethertype introduces a VLAN tag that gvs
// parses through.
func IsVLANTPID(t uint16) bool { return t == EtherTypeVLAN || t == EtherTypeQinQ }

// KeyTCI converts a wire TCI into the flow key's form (VLANPresent set).
func KeyTCI(wire uint16) uint16 { return wire | VLANPresent }

// WireTCI converts a flow key TCI into the form put on the wire: the
// present bit is dropped (DEI 0).
func WireTCI(key uint16) uint16 { return key &^ VLANPresent }
