package netdev

import "fmt"

// batchSize validates ReadBatch arguments and returns how many frames the
// call may fill: every buffer must have room for MaxFrame bytes.
func batchSize(name string, bufs [][]byte, sizes []int) (int, error) {
	return batchSizeFor(name, bufs, sizes, MaxFrame)
}

// batchSizeFor is batchSize for buffers that need room for need bytes.
func batchSizeFor(name string, bufs [][]byte, sizes []int, need int) (int, error) {
	n := min(len(bufs), len(sizes))
	for i := range n {
		if cap(bufs[i]) < need {
			return 0, fmt.Errorf("port %s: read buffer %d holds %d bytes, need %d", name, i, cap(bufs[i]), need)
		}
	}
	return n, nil
}
