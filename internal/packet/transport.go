package packet

import "encoding/binary"

// Transport header lengths.
const (
	TCPMinLen  = 20
	TCPMaxLen  = 60
	UDPLen     = 8
	SCTPLen    = 12 // common header: ports, verification tag, checksum
	ICMPv4Len  = 8  // type, code, checksum and the 4-byte rest of header
	ICMPv6Len  = 8
	ndBodyLen  = 4 + 16 // reserved/flags word, target address
	ndOptUnit  = 8      // option lengths count 8-byte units
	ndOptLLLen = 8      // a link-layer address option for Ethernet
)

// TCP flags as they sit in the low 12 bits of the offset/flags word (the
// same bits the flow key's TCPFlags holds).
const (
	TCPFlagFIN   uint16 = 0x001
	TCPFlagSYN   uint16 = 0x002
	TCPFlagRST   uint16 = 0x004
	TCPFlagPSH   uint16 = 0x008
	TCPFlagACK   uint16 = 0x010
	TCPFlagURG   uint16 = 0x020
	TCPFlagECE   uint16 = 0x040
	TCPFlagCWR   uint16 = 0x080
	TCPFlagNS    uint16 = 0x100
	tcpFlagsMask        = 0x0fff
)

// ICMPv6 neighbor discovery.
const (
	ICMPv6NeighborSolicit uint8 = 135
	ICMPv6NeighborAdvert  uint8 = 136
	NDOptSourceLLAddr     uint8 = 1
	NDOptTargetLLAddr     uint8 = 2
)

// TCP is a view of a TCP header: at least TCPMinLen bytes.
type TCP []byte

// SrcPort returns the source port.
func (b TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DstPort returns the destination port.
func (b TCP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// Seq returns the sequence number.
func (b TCP) Seq() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// Ack returns the acknowledgment number.
func (b TCP) Ack() uint32 { return binary.BigEndian.Uint32(b[8:12]) }

// HeaderLen returns the header length in bytes, from the data offset.
func (b TCP) HeaderLen() int { return int(b[12]>>4) * 4 }

// Flags returns the 12 flag bits (reserved bits, NS, CWR ... FIN).
func (b TCP) Flags() uint16 { return binary.BigEndian.Uint16(b[12:14]) & tcpFlagsMask }

// Window returns the receive window.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[14:16]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[16:18]) }

// SetSrcPort sets the source port (checksum not updated).
func (b TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[0:2], p) }

// SetDstPort sets the destination port (checksum not updated).
func (b TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[2:4], p) }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[16:18], c) }

// UDP is a view of a UDP header: UDPLen bytes.
type UDP []byte

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// Length returns the length field: header and payload.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// Checksum returns the checksum field (0 over IPv4 means none).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// SetSrcPort sets the source port (checksum not updated).
func (b UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[0:2], p) }

// SetDstPort sets the destination port (checksum not updated).
func (b UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[2:4], p) }

// SetLength sets the length field.
func (b UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(b[4:6], n) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[6:8], c) }

// SCTP is a view of an SCTP common header: SCTPLen bytes.
type SCTP []byte

// SrcPort returns the source port.
func (b SCTP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DstPort returns the destination port.
func (b SCTP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// Checksum returns the CRC32c field.
func (b SCTP) Checksum() uint32 { return binary.LittleEndian.Uint32(b[8:12]) }

// SetSrcPort sets the source port (checksum not updated).
func (b SCTP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[0:2], p) }

// SetDstPort sets the destination port (checksum not updated).
func (b SCTP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[2:4], p) }

// ICMP is a view of an ICMPv4 or ICMPv6 header: the two share their
// layout (type, code, checksum, then 4 bytes that depend on the type), so
// one view serves both; at least ICMPv4Len bytes.
type ICMP []byte

// Type returns the message type.
func (b ICMP) Type() uint8 { return b[0] }

// Code returns the message code.
func (b ICMP) Code() uint8 { return b[1] }

// Checksum returns the checksum field.
func (b ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// ID returns the identifier of an echo request or reply.
func (b ICMP) ID() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// Seq returns the sequence number of an echo request or reply.
func (b ICMP) Seq() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// SetType sets the message type.
func (b ICMP) SetType(t uint8) { b[0] = t }

// SetCode sets the message code.
func (b ICMP) SetCode(c uint8) { b[1] = c }

// SetChecksum sets the checksum field.
func (b ICMP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[2:4], c) }

// NDMessage is a view of an ICMPv6 neighbor solicitation or advertisement:
// the ICMPv6 header, the target address and options; at least
// ICMPv6Len+16 bytes.
type NDMessage []byte

// Reserved returns the 32 bits after the checksum: the R, S and O flags
// of an advertisement, zero in a solicitation.
func (b NDMessage) Reserved() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// Target returns the target address.
func (b NDMessage) Target() [16]byte { return [16]byte(b[8:24]) }

// Options returns the options that follow the target.
func (b NDMessage) Options() []byte { return b[24:] }
