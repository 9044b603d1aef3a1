package packet

import "testing"

func benchmarkParse(b *testing.B, frame []byte) {
	var key Key
	var off Offsets
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := Parse(frame, 1, &key, &off); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTCP4(b *testing.B)     { benchmarkParse(b, frameTCP4) }
func BenchmarkParseVLANUDP4(b *testing.B) { benchmarkParse(b, frameVLANUDP4) }
func BenchmarkParseTCP6(b *testing.B)     { benchmarkParse(b, frameTCP6) }

func BenchmarkPushPopVLAN(b *testing.B) {
	buf, frame := inBuffer(frameTCP4, Headroom, 0)
	b.ReportAllocs()
	for b.Loop() {
		f, _ := PushVLAN(buf, frame, EtherTypeVLAN, 100)
		frame = PopVLAN(f)
	}
}
