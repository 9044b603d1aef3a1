//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// A little rtnetlink: what internal ports need to know about a device by
// name (is it a TAP, who made it, is it in use) and to label the ones they
// make. It talks to the network namespace of the calling thread, which
// sysfs does not (/sys/class/net shows the namespace sysfs was mounted
// in), so it also works on a thread that has entered another namespace.

// kernelLink is what rtnetlink says about a network device.
type kernelLink struct {
	index int
	flags uint32 // ifi_flags: IFF_UP, IFF_RUNNING, ...
	mtu   int
	mac   net.HardwareAddr
	alias string // IFLA_IFALIAS, "" if none
	kind  string // IFLA_INFO_KIND: "tun" for TUN and TAP devices
	tun   uint8  // IFLA_TUN_TYPE: IFF_TAP or IFF_TUN
	// carrier is IFLA_CARRIER, whatever the admin state. A TUN/TAP
	// device has it while an fd is attached (unless an operator forced
	// it with `ip link set carrier`).
	carrier bool
}

// info describes the device as a port's Info.
func (l *kernelLink) info() Info {
	return Info{
		MAC:     l.mac,
		Ifindex: l.index,
		MTU:     l.mtu,
		LinkUp:  l.flags&unix.IFF_RUNNING != 0,
		AdminUp: l.flags&unix.IFF_UP != 0,
	}
}

// nlaTypeMask strips the nested and byte-order flags off an attribute type.
const nlaTypeMask = 0x3fff

// rtnlTimeoutSec bounds the wait for the kernel's answer.
const rtnlTimeoutSec = 5

// lookupLink returns the device called name in the calling thread's
// namespace, or nil if there is none.
func lookupLink(name string) (*kernelLink, error) {
	return getLink(name, 0, rtAttr{unix.IFLA_IFNAME, cstring(name)})
}

// lookupLinkIndex returns the device with ifindex index in the calling
// thread's namespace, or nil if there is none. Like lookupLink it asks
// the kernel for that one device: net.InterfaceByName and
// net.InterfaceByIndex read the whole link table for each call, which
// made every port's Info cost as much as the number of devices (and a
// transaction adding many ports quadratic).
func lookupLinkIndex(index int) (*kernelLink, error) {
	return getLink(fmt.Sprintf("ifindex %d", index), int32(index))
}

// getLink sends one RTM_GETLINK for the device named by index or attrs;
// what names it in the errors.
func getLink(what string, index int32, attrs ...rtAttr) (*kernelLink, error) {
	reply, err := rtnlRequest(unix.RTM_GETLINK, 0, index, attrs...)
	if errors.Is(err, unix.ENODEV) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", what, err)
	}
	link, ok := parseLink(reply)
	if !ok {
		return nil, fmt.Errorf("look up %s: malformed rtnetlink reply", what)
	}
	return link, nil
}

// linkInfo is the Info of device name, for a port's Info: false when
// there is no such device or it cannot be read.
func linkInfo(name string) (Info, bool) {
	l, err := lookupLink(name)
	if err != nil || l == nil {
		return Info{}, false
	}
	return l.info(), true
}

// linkInfoIndex is linkInfo by ifindex.
func linkInfoIndex(index int) (Info, bool) {
	l, err := lookupLinkIndex(index)
	if err != nil || l == nil {
		return Info{}, false
	}
	return l.info(), true
}

// setLinkAlias sets the ifalias of device name ("ip link set NAME alias").
func setLinkAlias(name, alias string) error {
	_, err := rtnlLinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK,
		rtAttr{unix.IFLA_IFNAME, cstring(name)}, rtAttr{unix.IFLA_IFALIAS, []byte(alias)})
	if err != nil {
		return fmt.Errorf("set alias of %s: %w", name, err)
	}
	return nil
}

type rtAttr struct {
	typ  uint16
	data []byte
}

func cstring(s string) []byte { return append([]byte(s), 0) }

// rtnlLinkRequest sends one link request, naming its device by attributes
// (ifi_index 0), and returns the payload of the answer: the link for a
// GET, nothing for an acknowledged SET.
func rtnlLinkRequest(msgType, flags uint16, attrs ...rtAttr) ([]byte, error) {
	return rtnlRequest(msgType, flags, 0, attrs...)
}

// rtnlRequest is rtnlLinkRequest with the device's ifindex in the
// ifinfomsg (0: named by the attributes).
func rtnlRequest(msgType, flags uint16, index int32, attrs ...rtAttr) ([]byte, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: rtnlTimeoutSec}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	const seq = 1
	req := encodeLinkRequest(msgType, unix.NLM_F_REQUEST|flags, seq, attrs)
	binary.NativeEndian.PutUint32(req[unix.NLMSG_HDRLEN+4:], uint32(index)) // ifi_index
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("rtnetlink send: %w", err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rtnetlink receive: %w", err)
		}
		if data, done, err := rtnlAnswer(buf[:n], seq); done {
			return data, err
		}
	}
}

// encodeLinkRequest builds a netlink message: header, an all-zero
// ifinfomsg, then the attributes.
func encodeLinkRequest(msgType, flags uint16, seq uint32, attrs []rtAttr) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg, 128)
	for _, a := range attrs {
		b = appendAttr(b, a.typ, a.data)
	}
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], msgType)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	return b
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// rtnlAnswer looks for the answer to request seq in one datagram: an
// error (errno 0 is the acknowledgement) or any other message, whose
// payload it returns.
func rtnlAnswer(b []byte, seq uint32) (data []byte, done bool, err error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, true, fmt.Errorf("rtnetlink: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Seq != seq {
			continue
		}
		if m.Header.Type != unix.NLMSG_ERROR {
			return m.Data, true, nil
		}
		if len(m.Data) < 4 {
			return nil, true, errors.New("rtnetlink: short error message")
		}
		if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
			return nil, true, unix.Errno(errno)
		}
		return nil, true, nil
	}
	return nil, false, nil
}

// parseLink decodes an RTM_NEWLINK payload: ifinfomsg and attributes.
func parseLink(b []byte) (*kernelLink, bool) {
	if len(b) < unix.SizeofIfInfomsg {
		return nil, false
	}
	ne := binary.NativeEndian
	l := &kernelLink{index: int(int32(ne.Uint32(b[4:]))), flags: ne.Uint32(b[8:])}
	var linkInfo []byte
	eachAttr(b[unix.SizeofIfInfomsg:], func(typ uint16, data []byte) {
		switch typ {
		case unix.IFLA_MTU:
			if len(data) >= 4 {
				l.mtu = int(ne.Uint32(data))
			}
		case unix.IFLA_ADDRESS:
			l.mac = net.HardwareAddr(bytes.Clone(data))
		case unix.IFLA_IFALIAS:
			l.alias = cstringValue(data)
		case unix.IFLA_CARRIER:
			l.carrier = len(data) >= 1 && data[0] != 0
		case unix.IFLA_LINKINFO:
			linkInfo = data
		}
	})
	l.parseLinkInfo(linkInfo)
	return l, true
}

// parseLinkInfo reads the device kind and, for TUN/TAP devices, their
// type.
func (l *kernelLink) parseLinkInfo(b []byte) {
	var kindData []byte
	eachAttr(b, func(typ uint16, data []byte) {
		switch typ {
		case unix.IFLA_INFO_KIND:
			l.kind = cstringValue(data)
		case unix.IFLA_INFO_DATA:
			kindData = data
		}
	})
	if l.kind != "tun" {
		return
	}
	eachAttr(kindData, func(typ uint16, data []byte) {
		if typ == unix.IFLA_TUN_TYPE && len(data) >= 1 {
			l.tun = data[0]
		}
	})
}

// eachAttr calls fn for each netlink attribute in b, stopping at the
// first malformed one.
func eachAttr(b []byte, fn func(typ uint16, data []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.SizeofRtAttr:n])
		n = (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if n > len(b) {
			return
		}
		b = b[n:]
	}
}

// cstringValue is a string attribute's text, without its NUL.
func cstringValue(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
