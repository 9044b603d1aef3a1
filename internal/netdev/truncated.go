package netdev

// OrigLenWriter is implemented by ports that record how long a frame was
// before a mirror's snaplen truncated it (pcap files).
//
// The datapath calls WriteBatchOrig instead of WriteBatch when the port
// implements it; origLens[i] is the length frames[i] had before it was cut
// (a value smaller than len(frames[i]) means "not truncated"). A nil or
// short origLens means the frames that have no entry were not truncated.
type OrigLenWriter interface {
	WriteBatchOrig(frames [][]byte, origLens []int) error
}
