package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
)

// The tunnel route table, as OVS's ovs-router: the routes gvs uses to
// decide how a tunnel port's packets leave. "Cached" routes are copied
// from the kernel's main and local tables (refreshed in the background
// while gvs has internal ports); "User" routes come from
// `ovs-appctl ovs/route/add`. A tunnel whose route leaves through one of
// gvs's own internal ports is sent natively (gvs builds the Ethernet
// header, resolves the next hop with its own neighbour cache and sends
// the frame through that port's bridge); any other route leaves the
// tunnel to the host's routing (raw sockets).

// Route is one entry of the tunnel route table.
type Route struct {
	Prefix netip.Prefix
	Dev    string
	GW     netip.Addr // invalid for a directly connected destination
	Src    netip.Addr // the preferred source address
	Mark   uint32     // pkt_mark (user routes)
	Local  bool       // a local address (the kernel's local table)
	User   bool       // added with ovs/route/add
}

// maxRoutes bounds the table: the kernel's routes beyond it are not
// copied (and logged), user routes beyond it are refused.
const maxRoutes = 10000

// ErrRouteNotFound is what ovs/route/del says about a route that is not
// a user route.
var ErrRouteNotFound error = routeNotFound{}

// routeNotFound is worded as OVS words it.
type routeNotFound struct{}

func (routeNotFound) Error() string { return "Not found" }

// routeTable is an immutable snapshot, sorted for longest-prefix match:
// longer prefixes first, local routes before others of the same length,
// user routes before cached ones.
type routeTable struct {
	routes []Route
}

func newRouteTable(routes []Route) *routeTable {
	rs := append([]Route(nil), routes...)
	sort.SliceStable(rs, func(i, j int) bool { return routeLess(&rs[i], &rs[j]) })
	return &routeTable{routes: rs}
}

// routeLess orders routes as a lookup tries them. IPv4 prefixes are
// compared by their length as IPv4-mapped IPv6 prefixes, as OVS does, so
// the order across families is total.
func routeLess(a, b *Route) bool {
	if la, lb := mappedBits(a.Prefix), mappedBits(b.Prefix); la != lb {
		return la > lb
	}
	if a.Local != b.Local {
		return a.Local
	}
	if a.User != b.User {
		return a.User
	}
	return a.Prefix.Addr().Less(b.Prefix.Addr())
}

func mappedBits(p netip.Prefix) int {
	if p.Addr().Is4() {
		return p.Bits() + 96
	}
	return p.Bits()
}

// lookup returns the longest-prefix route to dst with mark (0 matches
// routes without a mark only, as OVS's pkt_mark). It does not allocate.
func (t *routeTable) lookup(dst netip.Addr, mark uint32) (Route, bool) {
	dst = dst.Unmap()
	for i := range t.routes {
		r := &t.routes[i]
		if r.Mark == mark && r.Prefix.Contains(dst) {
			return *r, true
		}
	}
	return Route{}, false
}

// Router holds the tunnel route table: cached (kernel) and user routes.
type Router struct {
	mu     sync.Mutex
	cached []Route
	user   []Route
	table  atomic.Pointer[routeTable]
}

// NewRouter returns an empty route table.
func NewRouter() *Router {
	r := &Router{}
	r.table.Store(newRouteTable(nil))
	return r
}

// tunnelRouter is gvsd's route table (one per process, as OVS's).
var tunnelRouter = NewRouter()

// TunnelRouter returns gvsd's tunnel route table.
func TunnelRouter() *Router { return tunnelRouter }

// Lookup returns the route to dst.
func (r *Router) Lookup(dst netip.Addr, mark uint32) (Route, bool) {
	return r.table.Load().lookup(dst, mark)
}

// Routes returns every route, in lookup order.
func (r *Router) Routes() []Route {
	return append([]Route(nil), r.table.Load().routes...)
}

// setCached replaces the routes copied from the kernel.
func (r *Router) setCached(routes []Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(routes) > maxRoutes {
		routes = routes[:maxRoutes]
	}
	r.cached = routes
	r.publish()
}

func (r *Router) publish() {
	all := make([]Route, 0, len(r.cached)+len(r.user))
	all = append(append(all, r.user...), r.cached...)
	r.table.Store(newRouteTable(all))
}

// AddUser adds (or replaces) a user route. The source address is one of
// dev's addresses (addrs) on the subnet of the gateway, or of the
// destination when there is no gateway, as OVS picks it; without one
// the route is refused.
func (r *Router) AddUser(p netip.Prefix, dev string, gw netip.Addr, mark uint32, addrs []netip.Prefix) error {
	p = p.Masked()
	via := p.Addr()
	if gw.IsValid() {
		via = gw
		if gw.Is4() != p.Addr().Is4() {
			return errors.New("gateway and prefix are not of the same IP version")
		}
	}
	src, ok := sourceFor(via, addrs)
	if !ok {
		return fmt.Errorf("no address of %s is on the subnet of %s", dev, via)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	nr := Route{Prefix: p, Dev: dev, GW: gw, Src: src, Mark: mark, User: true}
	for i := range r.user {
		if r.user[i].Prefix == p && r.user[i].Mark == mark {
			r.user[i] = nr
			r.publish()
			return nil
		}
	}
	if len(r.user) >= maxRoutes {
		return fmt.Errorf("the route table holds %d user routes already", maxRoutes)
	}
	r.user = append(r.user, nr)
	r.publish()
	return nil
}

// DelUser deletes a user route; cached routes cannot be deleted.
func (r *Router) DelUser(p netip.Prefix, mark uint32) error {
	p = p.Masked()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.user {
		if r.user[i].Prefix == p && r.user[i].Mark == mark {
			r.user = append(r.user[:i], r.user[i+1:]...)
			r.publish()
			return nil
		}
	}
	return ErrRouteNotFound
}

// sourceFor picks the address among addrs whose subnet holds via.
func sourceFor(via netip.Addr, addrs []netip.Prefix) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Addr().Is4() == via.Is4() && a.Masked().Contains(via) {
			return a.Addr(), true
		}
	}
	return netip.Addr{}, false
}
