package span

import (
	"fmt"

	"gvs/internal/netdev"
)

// tunnelOut sends copies to a remote collector through a netdev
// TunnelSender: the encapsulation and raw IP socket of gvs's tunnel
// ports, without their receiving side. Super-frames are cut into
// wire-size segments before they are encapsulated; copies the kernel
// cut to snaplen are encapsulated as they are.
type tunnelOut struct {
	tx *netdev.TunnelSender
	b  *netdev.Batch
}

func openTunnel(s *Session, d Dest) (output, error) {
	tx, err := netdev.NewTunnelSender(netdev.TunnelSenderConfig{
		Name: fmt.Sprintf("span %s: %s", s.cfg.Name, d.Text), Encap: d.Tunnel,
		Mark: s.cfg.Mark, HasMark: s.cfg.HasMark})
	if err != nil {
		return nil, err
	}
	return &tunnelOut{tx: tx, b: netdev.NewBatch(batchMax)}, nil
}

// write counts a copy lost for each frame the kernel refused (no route
// to the remote, a full socket buffer); a super-frame's segments are
// counted as they go, so a copy cut into many frames may count more than
// once but never more than the batch.
func (o *tunnelOut) write(items []*item) (int, error) {
	o.b.Reset()
	for _, it := range items {
		o.b.Add(it.buf, netdev.OffloadFromVnetHdr(it.vnet[:]), it.orig, 0)
	}
	r := o.tx.Send(o.b)
	return min(r.Dropped, len(items)), nil
}

func (o *tunnelOut) close() { o.tx.Close() }
