package main

import (
	"encoding/json"
	"errors"
	"fmt"
)

// iperfReport is the part of an iperf3 -J client report that we read.
type iperfReport struct {
	Error string `json:"error"`
	End   struct {
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
	} `json:"end"`
}

// iperfSum is a summary from one side: the client's own for sum_sent, the
// server's (sent back to the client) for sum_received.
type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Packets       float64 `json:"packets"`
	LostPackets   float64 `json:"lost_packets"`
}

func parseIperf(data []byte) (*iperfReport, error) {
	var r iperfReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("not an iperf3 JSON report: %w", err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived == nil || r.End.SumSent == nil {
		return nil, errors.New("iperf3 report has no end summary")
	}
	return &r, nil
}

// tcpGbps is what the server received, in Gbit/s.
func (r *iperfReport) tcpGbps() (float64, error) {
	s := r.End.SumReceived
	if s.Seconds <= 0 || s.BitsPerSecond <= 0 {
		return 0, errors.New("nothing received")
	}
	return s.BitsPerSecond / 1e9, nil
}

// udpKpps is the rate of datagrams that reached the server, and the rate
// the client sent, both in thousands per second. The server counts lost
// datagrams from gaps in their sequence numbers.
func (r *iperfReport) udpKpps() (rate, offered float64, err error) {
	recv, sent := r.End.SumReceived, r.End.SumSent
	if recv.Seconds <= 0 || sent.Seconds <= 0 {
		return 0, 0, errors.New("empty UDP report")
	}
	// iperf3 counts losses from gaps in sequence numbers; its -O (omit)
	// option breaks that arithmetic for UDP, which shows up as this.
	if recv.LostPackets < 0 || recv.LostPackets > recv.Packets {
		return 0, 0, fmt.Errorf("inconsistent UDP report: %.0f lost of %.0f", recv.LostPackets, recv.Packets)
	}
	got := recv.Packets - recv.LostPackets
	if got <= 0 {
		return 0, 0, errors.New("nothing received")
	}
	return got / recv.Seconds / 1e3, sent.Packets / sent.Seconds / 1e3, nil
}
