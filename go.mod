module gvs

go 1.26.0

toolchain go1.26.8

require (
	github.com/spf13/cobra v1.10.2
	golang.org/x/sys v0.49.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

require (
	github.com/gopacket/gopacket v1.7.7
	golang.org/x/net v0.55.0 // indirect
)
