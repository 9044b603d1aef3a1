package packet

import "encoding/binary"

// ARP header constants for Ethernet/IPv4 ARP, the only kind OpenFlow
// matches on.
const (
	ARPLen          = 28
	ARPHardwareEth  = 1
	ARPOpRequest    = 1
	ARPOpReply      = 2
	arpAddrLensEth4 = 0x0604 // hardware length 6, protocol length 4
)

// ARP is a view of an Ethernet/IPv4 ARP or RARP packet: ARPLen bytes.
type ARP []byte

// HardwareType returns the hardware type (1 for Ethernet).
func (b ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// ProtocolType returns the protocol type (0x0800 for IPv4).
func (b ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// HardwareLen returns the hardware address length.
func (b ARP) HardwareLen() uint8 { return b[4] }

// ProtocolLen returns the protocol address length.
func (b ARP) ProtocolLen() uint8 { return b[5] }

// Op returns the opcode.
func (b ARP) Op() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// SHA returns the sender hardware address.
func (b ARP) SHA() [6]byte { return [6]byte(b[8:14]) }

// SPA returns the sender protocol address.
func (b ARP) SPA() [4]byte { return [4]byte(b[14:18]) }

// THA returns the target hardware address.
func (b ARP) THA() [6]byte { return [6]byte(b[18:24]) }

// TPA returns the target protocol address.
func (b ARP) TPA() [4]byte { return [4]byte(b[24:28]) }

// IsEthernetIPv4 reports whether the packet maps IPv4 addresses to
// Ethernet addresses, the only form whose addresses the flow key holds.
func (b ARP) IsEthernetIPv4() bool {
	return b.HardwareType() == ARPHardwareEth &&
		b.ProtocolType() == EtherTypeIPv4 &&
		binary.BigEndian.Uint16(b[4:6]) == arpAddrLensEth4
}

// SetOp sets the opcode.
func (b ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(b[6:8], op) }

// SetSHA sets the sender hardware address.
func (b ARP) SetSHA(a [6]byte) { copy(b[8:14], a[:]) }

// SetSPA sets the sender protocol address.
func (b ARP) SetSPA(a [4]byte) { copy(b[14:18], a[:]) }

// SetTHA sets the target hardware address.
func (b ARP) SetTHA(a [6]byte) { copy(b[18:24], a[:]) }

// SetTPA sets the target protocol address.
func (b ARP) SetTPA(a [4]byte) { copy(b[24:28], a[:]) }
