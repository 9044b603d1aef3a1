// Offsets of the fields of gvsd's flow cache key (datapath.Key, which
// embeds packet.Key) that the fast path fills in, in bytes, and its size
// in 64-bit words. Native byte order for integers, wire order for
// addresses, as in Go. TestOffloadKeyLayout (internal/datapath) checks
// them against the Go types.
#define KEY_WORDS 46
#define K_TUNID 0
#define K_INPORT 24
#define K_IPV6LABEL 104
#define K_VLANTCI 130
#define K_DLTYPE 134
#define K_TUNFLAGS 126
#define K_TPSRC 136
#define K_TPDST 138
#define K_TCPFLAGS 140
#define K_ARPOP 142
#define K_TUNTOS 146
#define K_TUNTTL 147
#define K_NWPROTO 152
#define K_NWTOS 153
#define K_NWTTL 154
#define K_TUNSRC 156
#define K_TUNDST 160
#define K_DLSRC 252
#define K_DLDST 258
#define K_NWSRC 264
#define K_NWDST 268
#define K_IPV6SRC 272
#define K_IPV6DST 288
#define K_ARPSHA 304
#define K_ARPTHA 310
#define K_ARPSPA 316
#define K_ARPTPA 320
#define K_VLANTPID 360
