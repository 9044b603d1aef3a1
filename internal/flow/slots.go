package flow

import (
	"encoding/binary"
	"unsafe"

	"gvs/internal/packet"
)

// A slot is one place in packet.Key that match fields write to: a whole
// Key member, or (for MPLS) the first element of an array member. Several
// field names can share a slot (nw_src and ip_src; tp_src, tcp_src and
// icmp_type), and some fields cover only some bits of it (nw_ecn, vlan_pcp).
type slot uint8

const (
	sNone slot = iota
	sTunID
	sTunSrc
	sTunDst
	sTunIPv6Src
	sTunIPv6Dst
	sTunTOS
	sTunTTL
	sTunFlags
	sTunGBPID
	sTunGBPFlags
	sTunErspanVer
	sTunErspanIdx
	sTunErspanDir
	sTunErspanHWID
	sMetadata
	sInPort
	sRecircID
	sDpHash
	sPktMark
	sCtState
	sCtZone
	sCtMark
	sCtLabel
	sCtNwSrc
	sCtNwDst
	sCtIPv6Src
	sCtIPv6Dst
	sCtNwProto
	sCtTpSrc
	sCtTpDst
	sDlSrc
	sDlDst
	sDlType
	sVLANTCI
	sMPLS
	sNwSrc
	sNwDst
	sIPv6Src
	sIPv6Dst
	sIPv6Label
	sNwProto
	sNwTOS
	sNwTTL
	sNwFrag
	sTpSrc
	sTpDst
	sTCPFlags
	sArpOp
	sArpSpa
	sArpTpa
	sArpSha
	sArpTha
	sNdTarget
	sNdSll
	sNdTll
	sConjID
	sReg0    // sReg0+i is register i, up to packet.NumRegs
	numSlots = sReg0 + packet.NumRegs
)

// slotLayout says where a slot lives in packet.Key. Integer members are
// kept in host byte order; byte arrays (addresses, ct_label) in network
// order.
type slotLayout struct {
	off   uintptr
	size  uintptr
	isInt bool
}

var lk packet.Key // only for Offsetof

func intSlot(off, size uintptr) slotLayout   { return slotLayout{off, size, true} }
func bytesSlot(off, size uintptr) slotLayout { return slotLayout{off, size, false} }

var layouts = func() [numSlots]slotLayout {
	l := fixedLayouts
	for i := range packet.NumRegs {
		l[sReg0+slot(i)] = intSlot(unsafe.Offsetof(lk.Regs)+uintptr(4*i), 4)
	}
	return l
}()

var fixedLayouts = [numSlots]slotLayout{
	sTunID:         intSlot(unsafe.Offsetof(lk.TunID), 8),
	sTunSrc:        bytesSlot(unsafe.Offsetof(lk.TunSrc), 4),
	sTunDst:        bytesSlot(unsafe.Offsetof(lk.TunDst), 4),
	sTunIPv6Src:    bytesSlot(unsafe.Offsetof(lk.TunIPv6Src), 16),
	sTunIPv6Dst:    bytesSlot(unsafe.Offsetof(lk.TunIPv6Dst), 16),
	sTunTOS:        intSlot(unsafe.Offsetof(lk.TunTOS), 1),
	sTunTTL:        intSlot(unsafe.Offsetof(lk.TunTTL), 1),
	sTunFlags:      intSlot(unsafe.Offsetof(lk.TunFlags), 2),
	sTunGBPID:      intSlot(unsafe.Offsetof(lk.TunGBPID), 2),
	sTunGBPFlags:   intSlot(unsafe.Offsetof(lk.TunGBPFlag), 1),
	sTunErspanVer:  intSlot(unsafe.Offsetof(lk.TunErspanVer), 1),
	sTunErspanIdx:  intSlot(unsafe.Offsetof(lk.TunErspanIdx), 4),
	sTunErspanDir:  intSlot(unsafe.Offsetof(lk.TunErspanDir), 1),
	sTunErspanHWID: intSlot(unsafe.Offsetof(lk.TunErspanHWID), 1),
	sMetadata:      intSlot(unsafe.Offsetof(lk.Metadata), 8),
	sConjID:        intSlot(unsafe.Offsetof(lk.ConjID), 4),
	sInPort:        intSlot(unsafe.Offsetof(lk.InPort), 4),
	sRecircID:      intSlot(unsafe.Offsetof(lk.RecircID), 4),
	sDpHash:        intSlot(unsafe.Offsetof(lk.DpHash), 4),
	sPktMark:       intSlot(unsafe.Offsetof(lk.PktMark), 4),
	sCtState:       intSlot(unsafe.Offsetof(lk.CtState), 1),
	sCtZone:        intSlot(unsafe.Offsetof(lk.CtZone), 2),
	sCtMark:        intSlot(unsafe.Offsetof(lk.CtMark), 4),
	sCtLabel:       bytesSlot(unsafe.Offsetof(lk.CtLabel), 16),
	sCtNwSrc:       bytesSlot(unsafe.Offsetof(lk.CtNwSrc), 4),
	sCtNwDst:       bytesSlot(unsafe.Offsetof(lk.CtNwDst), 4),
	sCtIPv6Src:     bytesSlot(unsafe.Offsetof(lk.CtIPv6Src), 16),
	sCtIPv6Dst:     bytesSlot(unsafe.Offsetof(lk.CtIPv6Dst), 16),
	sCtNwProto:     intSlot(unsafe.Offsetof(lk.CtNwProto), 1),
	sCtTpSrc:       intSlot(unsafe.Offsetof(lk.CtTpSrc), 2),
	sCtTpDst:       intSlot(unsafe.Offsetof(lk.CtTpDst), 2),
	sDlSrc:         bytesSlot(unsafe.Offsetof(lk.DlSrc), 6),
	sDlDst:         bytesSlot(unsafe.Offsetof(lk.DlDst), 6),
	sDlType:        intSlot(unsafe.Offsetof(lk.DlType), 2),
	sVLANTCI:       intSlot(unsafe.Offsetof(lk.VLANTCI), 2),
	sMPLS:          intSlot(unsafe.Offsetof(lk.MPLSLSE), 4),
	sNwSrc:         bytesSlot(unsafe.Offsetof(lk.NwSrc), 4),
	sNwDst:         bytesSlot(unsafe.Offsetof(lk.NwDst), 4),
	sIPv6Src:       bytesSlot(unsafe.Offsetof(lk.IPv6Src), 16),
	sIPv6Dst:       bytesSlot(unsafe.Offsetof(lk.IPv6Dst), 16),
	sIPv6Label:     intSlot(unsafe.Offsetof(lk.IPv6Label), 4),
	sNwProto:       intSlot(unsafe.Offsetof(lk.NwProto), 1),
	sNwTOS:         intSlot(unsafe.Offsetof(lk.NwTOS), 1),
	sNwTTL:         intSlot(unsafe.Offsetof(lk.NwTTL), 1),
	sNwFrag:        intSlot(unsafe.Offsetof(lk.NwFrag), 1),
	sTpSrc:         intSlot(unsafe.Offsetof(lk.TpSrc), 2),
	sTpDst:         intSlot(unsafe.Offsetof(lk.TpDst), 2),
	sTCPFlags:      intSlot(unsafe.Offsetof(lk.TCPFlags), 2),
	sArpOp:         intSlot(unsafe.Offsetof(lk.ArpOp), 2),
	sArpSpa:        bytesSlot(unsafe.Offsetof(lk.ArpSpa), 4),
	sArpTpa:        bytesSlot(unsafe.Offsetof(lk.ArpTpa), 4),
	sArpSha:        bytesSlot(unsafe.Offsetof(lk.ArpSha), 6),
	sArpTha:        bytesSlot(unsafe.Offsetof(lk.ArpTha), 6),
	sNdTarget:      bytesSlot(unsafe.Offsetof(lk.NdTarget), 16),
	sNdSll:         bytesSlot(unsafe.Offsetof(lk.NdSll), 6),
	sNdTll:         bytesSlot(unsafe.Offsetof(lk.NdTll), 6),
}

// slotBytes is the memory of slot s in key, as it lies there.
func slotBytes(key *packet.Key, s slot) []byte {
	l := layouts[s]
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(key), l.off)), l.size)
}

// getUint reads integer slot s of key.
func getUint(key *packet.Key, s slot) uint64 {
	b := slotBytes(key, s)
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.NativeEndian.Uint16(b))
	case 4:
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}

// setUint writes integer slot s of key; bits beyond the slot's width are
// dropped (callers check ranges first).
func setUint(key *packet.Key, s slot, v uint64) {
	b := slotBytes(key, s)
	switch len(b) {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.NativeEndian.PutUint16(b, uint16(v))
	case 4:
		binary.NativeEndian.PutUint32(b, uint32(v))
	default:
		binary.NativeEndian.PutUint64(b, v)
	}
}

// isZero reports whether slot s of key is all zero bits.
func isZero(key *packet.Key, s slot) bool {
	for _, b := range slotBytes(key, s) {
		if b != 0 {
			return false
		}
	}
	return true
}

// isOnes reports whether slot s of key is all one bits.
func isOnes(key *packet.Key, s slot) bool {
	for _, b := range slotBytes(key, s) {
		if b != 0xff {
			return false
		}
	}
	return true
}

// clearSlot zeroes slot s of key.
func clearSlot(key *packet.Key, s slot) { clear(slotBytes(key, s)) }

// moveSlot moves the value and mask of integer or byte slot from into slot
// to of the same size, clearing from. It is how fields that share one slot
// in OpenFlow (nw_src and arp_spa) land in their own Key members.
func moveSlot(value, mask *packet.Key, from, to slot) {
	for _, k := range []*packet.Key{value, mask} {
		if layouts[from].isInt {
			setUint(k, to, getUint(k, from))
		} else {
			copy(slotBytes(k, to), slotBytes(k, from))
		}
		clearSlot(k, from)
	}
}
