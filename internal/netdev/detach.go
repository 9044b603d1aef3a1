package netdev

// Detacher is implemented by ports whose kernel device can outlive gvsd:
// internal ports, whose TAP devices are persistent so that a crash does
// not take an interface, with its addresses and namespace, away from the
// host using it.
//
// Detach releases the port like Close (a blocked ReadBatch returns
// ErrClosed, later calls fail with ErrClosed) but leaves the device in
// place, wherever it has been moved, for the next gvsd to re-attach to
// when it opens a port of that name. Close, in contrast, removes the
// device. After either one, the other does nothing.
//
// gvsd detaches on an exit without --cleanup (SIGTERM, `ovs-appctl exit`),
// as OVS leaves internal ports behind then, and closes when a port or
// bridge is deleted or on `ovs-appctl exit --cleanup`.
type Detacher interface {
	Detach() error
}
