package vswitchd

import (
	"hash/fnv"
	"path/filepath"
	"strconv"

	"gvs/internal/connmgr"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// SetRunDir sets where bridges' OpenFlow management sockets
// (<rundir>/<bridge>.mgmt) go. Call it before Run; without it, bridges
// have no OpenFlow channel.
func (sw *Switch) SetRunDir(dir string) {
	sw.state.mu.Lock()
	sw.state.rundir = dir
	sw.state.mu.Unlock()
}

// syncChannels opens the management socket of each new bridge, gives
// every channel its bridge's current ports, and closes the channels of
// deleted bridges. A socket that cannot be opened is logged and tried
// again at the next reconfiguration.
func (st *datapathState) syncChannels(bridges []*wantBridge) {
	if st.channels == nil {
		st.channels = map[string]*connmgr.Service{}
	}
	live := map[string]bool{}
	for _, b := range bridges {
		live[b.name] = true
		if st.rundir == "" {
			continue
		}
		info := st.channelInfo(b)
		if ch := st.channels[b.name]; ch != nil {
			ch.SetInfo(info)
			continue
		}
		if err := checkBridgeName(b.name); err != nil {
			// Only a database gvsd did not check holds it (the
			// remote checks log it): no socket outside the run
			// directory.
			continue
		}
		ch, err := connmgr.Listen(filepath.Join(st.rundir, b.name+".mgmt"), st.bridges[b.name], info)
		if err != nil {
			vswitchdLog.Warn("%v", err)
			continue
		}
		ch.SetExecutor(st.dp)
		if st.onControllerStatus != nil {
			ch.OnStatusChange(st.onControllerStatus)
		}
		st.channels[b.name] = ch
	}
	for name, ch := range st.channels {
		if !live[name] {
			ch.Close()
			delete(st.channels, name)
		}
	}
}

func (st *datapathState) closeChannels() {
	for name, ch := range st.channels {
		ch.Close()
		delete(st.channels, name)
	}
}

// channelInfo describes bridge b to its OpenFlow channel.
func (st *datapathState) channelInfo(b *wantBridge) *connmgr.Info {
	info := &connmgr.Info{Versions: protocolVersions(b.protocols)}
	var localMAC []byte
	for _, p := range b.ports {
		ifc := st.ifaces[p.name]
		if ifc == nil || ifc.want != p || ifc.err != "" || ifc.ofport <= 0 {
			continue
		}
		port := connmgr.Port{OFPort: uint32(ifc.ofport), Name: p.name, Dev: ifc.dev}
		if ifc.dev != nil {
			port.DevInfo = st.devInfo(ifc)
			if mac := port.DevInfo.MAC; len(mac) == 6 {
				copy(port.HWAddr[:], mac)
				if ifc.ofport == ofproto.LocalPort {
					localMAC = mac
				}
			}
		}
		info.Ports = append(info.Ports, port)
	}
	info.DatapathID = datapathID(b, localMAC)
	info.FailMode = b.failMode
	for _, c := range b.controllers {
		cc := c.config
		cc.UnixDir = st.rundir // unix: and punix: targets stay in it
		info.Controllers = append(info.Controllers, cc)
	}
	return info
}

// datapathID is other_config:datapath-id when it is 16 hex digits, else
// the bridge's MAC address as OVS derives it, else a number from the
// bridge's name.
func datapathID(b *wantBridge, localMAC []byte) uint64 {
	if len(b.datapathID) == 16 {
		if v, err := strconv.ParseUint(b.datapathID, 16, 64); err == nil {
			return v
		}
	}
	if len(localMAC) == 6 {
		var v uint64
		for _, c := range localMAC {
			v = v<<8 | uint64(c)
		}
		return v
	}
	h := fnv.New64a()
	h.Write([]byte(b.name))
	return h.Sum64() & 0xffffffffffff
}

// protocolVersions is the hello bitmap Bridge.protocols allows, of the
// versions gvs speaks (1.0, 1.3, 1.4 and 1.5); empty protocols allow
// all four, as OVS allows 1.0 to 1.5 by default. OpenFlow11 and
// OpenFlow12, which gvs does not speak, allow nothing.
func protocolVersions(protocols []string) uint32 {
	if len(protocols) == 0 {
		return openflow.VersionBitmap(openflow.Version10, openflow.Version13, openflow.Version14, openflow.Version15)
	}
	var v uint32
	for _, p := range protocols {
		switch p {
		case "OpenFlow10":
			v |= openflow.VersionBitmap(openflow.Version10)
		case "OpenFlow13":
			v |= openflow.VersionBitmap(openflow.Version13)
		case "OpenFlow14":
			v |= openflow.VersionBitmap(openflow.Version14)
		case "OpenFlow15":
			v |= openflow.VersionBitmap(openflow.Version15)
		}
	}
	return v
}
