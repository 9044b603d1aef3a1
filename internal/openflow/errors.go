package openflow

import (
	"errors"
	"fmt"
)

// ErrCode names one OpenFlow error independently of the version it is
// sent in, as OVS's error names (OFPBRC_BAD_TYPE, NXBRC_NXM_INVALID...) do.
// The same error has different type/code numbers in 1.0 and 1.3, and some
// exist in only one of them; errTable says how each is encoded.
type ErrCode uint16

// The errors gvs can send or may receive. The comment is when to use it.
const (
	ErrUnknown ErrCode = iota // an error this package has no name for (decoded only)

	ErrHelloIncompatible // OFPHFC_INCOMPATIBLE: no common version
	ErrHelloEPerm        // OFPHFC_EPERM

	ErrBadVersion        // OFPBRC_BAD_VERSION: header version not the negotiated one
	ErrBadType           // OFPBRC_BAD_TYPE: unknown message type
	ErrBadStat           // OFPBRC_BAD_STAT: unknown stats/multipart type
	ErrBadVendor         // OFPBRC_BAD_VENDOR: unknown vendor/experimenter id
	ErrBadSubtype        // OFPBRC_BAD_SUBTYPE: unknown vendor subtype
	ErrEPerm             // OFPBRC_EPERM
	ErrBadLen            // OFPBRC_BAD_LEN: wrong request length
	ErrBufferEmpty       // OFPBRC_BUFFER_EMPTY
	ErrBufferUnknown     // OFPBRC_BUFFER_UNKNOWN: buffer id that does not exist
	ErrBadTableID        // OFPBRC_BAD_TABLE_ID
	ErrIsSlave           // OFPBRC_IS_SLAVE: a state change from a slave controller (1.2+)
	ErrBadPort           // OFPBRC_BAD_PORT: invalid in_port
	ErrBadPacket         // OFPBRC_BAD_PACKET
	ErrMultipartOverflow // OFPBRC_MULTIPART_BUFFER_OVERFLOW
	ErrNXMInvalid        // NXBRC_NXM_INVALID: malformed NXM/OXM
	ErrNXMBadType        // NXBRC_NXM_BAD_TYPE: unknown NXM/OXM field
	ErrMustBeZero        // NXBRC_MUST_BE_ZERO
	ErrUnencodable       // NXBRC_UNENCODABLE_ERROR: stand-in for an error the version cannot say

	ErrActBadType           // OFPBAC_BAD_TYPE: unknown action
	ErrActBadLen            // OFPBAC_BAD_LEN
	ErrActBadVendor         // OFPBAC_BAD_VENDOR
	ErrActBadVendorType     // OFPBAC_BAD_VENDOR_TYPE: unknown Nicira action
	ErrActBadOutPort        // OFPBAC_BAD_OUT_PORT
	ErrActBadArgument       // OFPBAC_BAD_ARGUMENT
	ErrActEPerm             // OFPBAC_EPERM
	ErrActTooMany           // OFPBAC_TOO_MANY
	ErrActBadQueue          // OFPBAC_BAD_QUEUE
	ErrActBadOutGroup       // OFPBAC_BAD_OUT_GROUP
	ErrActMatchInconsistent // OFPBAC_MATCH_INCONSISTENT
	ErrActUnsupportedOrder  // OFPBAC_UNSUPPORTED_ORDER
	ErrActBadTag            // OFPBAC_BAD_TAG
	ErrActBadSetType        // OFPBAC_BAD_SET_TYPE
	ErrActBadSetLen         // OFPBAC_BAD_SET_LEN
	ErrActBadSetArgument    // OFPBAC_BAD_SET_ARGUMENT
	ErrActBadSetMask        // OFPBAC_BAD_SET_MASK
	ErrActMustBeZero        // NXBAC_MUST_BE_ZERO
	ErrActBadConjunction    // NXBAC_BAD_CONJUNCTION
	ErrActCTDatapath        // NXBAC_CT_DATAPATH_SUPPORT

	ErrInstUnknown         // OFPBIC_UNKNOWN_INST
	ErrInstUnsupported     // OFPBIC_UNSUP_INST
	ErrInstBadTableID      // OFPBIC_BAD_TABLE_ID: goto_table backwards or past the last table
	ErrInstUnsupMetadata   // OFPBIC_UNSUP_METADATA
	ErrInstUnsupMetaMask   // OFPBIC_UNSUP_METADATA_MASK
	ErrInstBadExperimenter // OFPBIC_BAD_EXPERIMENTER
	ErrInstBadExpType      // OFPBIC_BAD_EXP_TYPE
	ErrInstBadLen          // OFPBIC_BAD_LEN
	ErrInstEPerm           // OFPBIC_EPERM
	ErrInstDup             // OFPBIC_DUP_INST

	ErrMatchBadType      // OFPBMC_BAD_TYPE
	ErrMatchBadLen       // OFPBMC_BAD_LEN
	ErrMatchBadTag       // OFPBMC_BAD_TAG
	ErrMatchBadDlMask    // OFPBMC_BAD_DL_ADDR_MASK
	ErrMatchBadNwMask    // OFPBMC_BAD_NW_ADDR_MASK
	ErrMatchBadWildcards // OFPBMC_BAD_WILDCARDS
	ErrMatchBadField     // OFPBMC_BAD_FIELD
	ErrMatchBadValue     // OFPBMC_BAD_VALUE
	ErrMatchBadMask      // OFPBMC_BAD_MASK
	ErrMatchBadPrereq    // OFPBMC_BAD_PREREQ
	ErrMatchDupField     // OFPBMC_DUP_FIELD
	ErrMatchEPerm        // OFPBMC_EPERM
	ErrMatchCTDatapath   // NXBMC_CT_DATAPATH_SUPPORT

	ErrFlowUnknown         // OFPFMFC_UNKNOWN
	ErrFlowTableFull       // OFPFMFC_TABLE_FULL
	ErrFlowBadTableID      // OFPFMFC_BAD_TABLE_ID
	ErrFlowOverlap         // OFPFMFC_OVERLAP
	ErrFlowEPerm           // OFPFMFC_EPERM
	ErrFlowBadTimeout      // OFPFMFC_BAD_TIMEOUT
	ErrFlowBadEmergTimeout // OFPFMFC_BAD_EMERG_TIMEOUT
	ErrFlowBadCommand      // OFPFMFC_BAD_COMMAND
	ErrFlowBadFlags        // OFPFMFC_BAD_FLAGS
	ErrFlowBadPriority     // OFPFMFC_BAD_PRIORITY
	ErrFlowUnsupported     // OFPFMFC_UNSUPPORTED
	ErrFlowHardware        // NXFMFC_HARDWARE
	ErrFlowNXBadTableID    // NXFMFC_BAD_TABLE_ID

	ErrPortModBadPort   // OFPPMFC_BAD_PORT
	ErrPortModBadHwAddr // OFPPMFC_BAD_HW_ADDR
	ErrPortModBadConfig // OFPPMFC_BAD_CONFIG

	ErrTableModBadTable // OFPTMFC_BAD_TABLE

	ErrQueueBadPort  // OFPQOFC_BAD_PORT
	ErrQueueBadQueue // OFPQOFC_BAD_QUEUE

	ErrSwitchConfigBadFlags // OFPSCFC_BAD_FLAGS
	ErrSwitchConfigBadLen   // OFPSCFC_BAD_LEN

	ErrRoleStale   // OFPRRFC_STALE
	ErrRoleUnsup   // OFPRRFC_UNSUP
	ErrRoleBadRole // OFPRRFC_BAD_ROLE

	ErrTableFeaturesBadTable    // OFPTFFC_BAD_TABLE
	ErrTableFeaturesBadMetadata // OFPTFFC_BAD_METADATA
	ErrTableFeaturesEPerm       // OFPTFFC_EPERM

	ErrBundleUnknown      // OFPBFC_UNKNOWN
	ErrBundleEPerm        // OFPBFC_EPERM
	ErrBundleBadID        // OFPBFC_BAD_ID: no such bundle
	ErrBundleExist        // OFPBFC_BUNDLE_EXIST: bundle id already open
	ErrBundleClosed       // OFPBFC_BUNDLE_CLOSED
	ErrBundleOutOfBundles // OFPBFC_OUT_OF_BUNDLES: too many open bundles
	ErrBundleBadType      // OFPBFC_BAD_TYPE: unknown bundle control type
	ErrBundleBadFlags     // OFPBFC_BAD_FLAGS
	ErrBundleMsgBadLen    // OFPBFC_MSG_BAD_LEN: the inner message's length
	ErrBundleMsgBadXid    // OFPBFC_MSG_BAD_XID
	ErrBundleMsgUnsup     // OFPBFC_MSG_UNSUP: a message bundles cannot hold
	ErrBundleMsgTooMany   // OFPBFC_MSG_TOO_MANY: past a bundle's limits
	ErrBundleMsgFailed    // OFPBFC_MSG_FAILED: one message failed at commit
	ErrBundleBadVersion   // OFPBFC_BAD_VERSION: inner and outer versions differ

	ErrPropBadType    // OFPBPC_BAD_TYPE: an unknown property (a 1.5 bucket's)
	ErrPropBadLen     // OFPBPC_BAD_LEN: a 1.4 property's length
	ErrPropBadExpType // OFPBPC_BAD_EXP_TYPE: an experimenter's property gvs does not know

	ErrAsyncInvalid     // OFPACFC_INVALID: an async config mask with reasons the version lacks
	ErrAsyncUnsupported // OFPACFC_UNSUPPORTED: an unknown async config property

	ErrGroupExists              // OFPGMFC_GROUP_EXISTS: an add of a group id in use
	ErrGroupInvalid             // OFPGMFC_INVALID_GROUP: a reserved id, or buckets the type cannot have
	ErrGroupWeightUnsupported   // OFPGMFC_WEIGHT_UNSUPPORTED
	ErrGroupOutOfGroups         // OFPGMFC_OUT_OF_GROUPS: the bridge's group limit
	ErrGroupOutOfBuckets        // OFPGMFC_OUT_OF_BUCKETS: a group's bucket limit
	ErrGroupChainingUnsupported // OFPGMFC_CHAINING_UNSUPPORTED
	ErrGroupWatchUnsupported    // OFPGMFC_WATCH_UNSUPPORTED: a watch in a group type that has none
	ErrGroupLoop                // OFPGMFC_LOOP: a group that would reach itself
	ErrGroupUnknown             // OFPGMFC_UNKNOWN_GROUP: a modify of a group that does not exist
	ErrGroupChained             // OFPGMFC_CHAINED_GROUP
	ErrGroupBadType             // OFPGMFC_BAD_TYPE: an unknown group type
	ErrGroupBadCommand          // OFPGMFC_BAD_COMMAND
	ErrGroupBadBucket           // OFPGMFC_BAD_BUCKET: a malformed bucket
	ErrGroupBadWatch            // OFPGMFC_BAD_WATCH
	ErrGroupEPerm               // OFPGMFC_EPERM
	ErrGroupUnknownBucket       // OFPGMFC_UNKNOWN_BUCKET: 1.5's command bucket id names none
	ErrGroupBucketExists        // OFPGMFC_BUCKET_EXISTS: 1.5's insert of a bucket id in use

	numErrCodes
)

// errEnc is an error's numbers in one version. vendor 0 is a standard
// error; with a vendor, 1.0 wraps type/code in NXET_VENDOR and 1.3 sends
// an experimenter error whose code is expCode. ok false: not encodable.
type errEnc struct {
	ok      bool
	vendor  uint32
	typ     uint16
	code    uint16
	expCode uint16
}

func of(t, c uint16) errEnc   { return errEnc{ok: true, typ: t, code: c} }
func nx10(t, c uint16) errEnc { return errEnc{ok: true, vendor: NXVendorID, typ: t, code: c} }
func nx13(n uint16) errEnc    { return errEnc{ok: true, vendor: NXVendorID, expCode: n} }
func onf13(n uint16) errEnc   { return errEnc{ok: true, vendor: onfVendorID, expCode: n} }

var none errEnc

type errInfo struct {
	name       string
	of10, of13 errEnc
}

// errTable holds the numbers of include/openvswitch/ofp-errors.h's
// domains OF1.0 and OF1.3 (including their NX and ONF extensions).
var errTable = [numErrCodes]errInfo{
	ErrUnknown:           {"unknown error", none, none},
	ErrHelloIncompatible: {"OFPHFC_INCOMPATIBLE", of(0, 0), of(0, 0)},
	ErrHelloEPerm:        {"OFPHFC_EPERM", of(0, 1), of(0, 1)},

	ErrBadVersion:        {"OFPBRC_BAD_VERSION", of(1, 0), of(1, 0)},
	ErrBadType:           {"OFPBRC_BAD_TYPE", of(1, 1), of(1, 1)},
	ErrBadStat:           {"OFPBRC_BAD_STAT", of(1, 2), of(1, 2)},
	ErrBadVendor:         {"OFPBRC_BAD_VENDOR", of(1, 3), of(1, 3)},
	ErrBadSubtype:        {"OFPBRC_BAD_SUBTYPE", of(1, 4), of(1, 4)},
	ErrEPerm:             {"OFPBRC_EPERM", of(1, 5), of(1, 5)},
	ErrBadLen:            {"OFPBRC_BAD_LEN", of(1, 6), of(1, 6)},
	ErrBufferEmpty:       {"OFPBRC_BUFFER_EMPTY", of(1, 7), of(1, 7)},
	ErrBufferUnknown:     {"OFPBRC_BUFFER_UNKNOWN", of(1, 8), of(1, 8)},
	ErrBadTableID:        {"OFPBRC_BAD_TABLE_ID", nx10(1, 512), of(1, 9)},
	ErrIsSlave:           {"OFPBRC_IS_SLAVE", none, of(1, 10)},
	ErrBadPort:           {"OFPBRC_BAD_PORT", nx10(1, 514), of(1, 11)},
	ErrBadPacket:         {"OFPBRC_BAD_PACKET", none, of(1, 12)},
	ErrMultipartOverflow: {"OFPBRC_MULTIPART_BUFFER_OVERFLOW", none, of(1, 13)},
	ErrNXMInvalid:        {"NXBRC_NXM_INVALID", nx10(1, 256), nx13(2)},
	ErrNXMBadType:        {"NXBRC_NXM_BAD_TYPE", nx10(1, 257), nx13(3)},
	ErrMustBeZero:        {"NXBRC_MUST_BE_ZERO", nx10(1, 515), nx13(4)},
	ErrUnencodable:       {"NXBRC_UNENCODABLE_ERROR", nx10(1, 521), nx13(10)},

	ErrActBadType:           {"OFPBAC_BAD_TYPE", of(2, 0), of(2, 0)},
	ErrActBadLen:            {"OFPBAC_BAD_LEN", of(2, 1), of(2, 1)},
	ErrActBadVendor:         {"OFPBAC_BAD_VENDOR", of(2, 2), of(2, 2)},
	ErrActBadVendorType:     {"OFPBAC_BAD_VENDOR_TYPE", of(2, 3), of(2, 3)},
	ErrActBadOutPort:        {"OFPBAC_BAD_OUT_PORT", of(2, 4), of(2, 4)},
	ErrActBadArgument:       {"OFPBAC_BAD_ARGUMENT", of(2, 5), of(2, 5)},
	ErrActEPerm:             {"OFPBAC_EPERM", of(2, 6), of(2, 6)},
	ErrActTooMany:           {"OFPBAC_TOO_MANY", of(2, 7), of(2, 7)},
	ErrActBadQueue:          {"OFPBAC_BAD_QUEUE", of(2, 8), of(2, 8)},
	ErrActBadOutGroup:       {"OFPBAC_BAD_OUT_GROUP", nx10(2, 9), of(2, 9)},
	ErrActMatchInconsistent: {"OFPBAC_MATCH_INCONSISTENT", nx10(1, 522), of(2, 10)},
	ErrActUnsupportedOrder:  {"OFPBAC_UNSUPPORTED_ORDER", none, of(2, 11)},
	ErrActBadTag:            {"OFPBAC_BAD_TAG", none, of(2, 12)},
	ErrActBadSetType:        {"OFPBAC_BAD_SET_TYPE", nx10(1, 523), of(2, 13)},
	ErrActBadSetLen:         {"OFPBAC_BAD_SET_LEN", nx10(1, 524), of(2, 14)},
	ErrActBadSetArgument:    {"OFPBAC_BAD_SET_ARGUMENT", nx10(1, 525), of(2, 15)},
	ErrActBadSetMask:        {"OFPBAC_BAD_SET_MASK", none, onf13(4250)},
	ErrActMustBeZero:        {"NXBAC_MUST_BE_ZERO", nx10(2, 256), nx13(11)},
	ErrActBadConjunction:    {"NXBAC_BAD_CONJUNCTION", nx10(2, 526), nx13(15)},
	ErrActCTDatapath:        {"NXBAC_CT_DATAPATH_SUPPORT", nx10(1, 265), nx13(42)},

	ErrInstUnknown:         {"OFPBIC_UNKNOWN_INST", none, of(3, 0)},
	ErrInstUnsupported:     {"OFPBIC_UNSUP_INST", nx10(2, 257), of(3, 1)},
	ErrInstBadTableID:      {"OFPBIC_BAD_TABLE_ID", none, of(3, 2)},
	ErrInstUnsupMetadata:   {"OFPBIC_UNSUP_METADATA", none, of(3, 3)},
	ErrInstUnsupMetaMask:   {"OFPBIC_UNSUP_METADATA_MASK", none, of(3, 4)},
	ErrInstBadExperimenter: {"OFPBIC_BAD_EXPERIMENTER", none, of(3, 5)},
	ErrInstBadExpType:      {"OFPBIC_BAD_EXP_TYPE", none, of(3, 6)},
	ErrInstBadLen:          {"OFPBIC_BAD_LEN", none, of(3, 7)},
	ErrInstEPerm:           {"OFPBIC_EPERM", none, of(3, 8)},
	ErrInstDup:             {"OFPBIC_DUP_INST", none, onf13(2600)},

	ErrMatchBadType:      {"OFPBMC_BAD_TYPE", none, of(4, 0)},
	ErrMatchBadLen:       {"OFPBMC_BAD_LEN", none, of(4, 1)},
	ErrMatchBadTag:       {"OFPBMC_BAD_TAG", none, of(4, 2)},
	ErrMatchBadDlMask:    {"OFPBMC_BAD_DL_ADDR_MASK", none, of(4, 3)},
	ErrMatchBadNwMask:    {"OFPBMC_BAD_NW_ADDR_MASK", none, of(4, 4)},
	ErrMatchBadWildcards: {"OFPBMC_BAD_WILDCARDS", nx10(1, 262), of(4, 5)},
	ErrMatchBadField:     {"OFPBMC_BAD_FIELD", nx10(0, 263), of(4, 6)},
	ErrMatchBadValue:     {"OFPBMC_BAD_VALUE", nx10(1, 258), of(4, 7)},
	ErrMatchBadMask:      {"OFPBMC_BAD_MASK", nx10(1, 259), of(4, 8)},
	ErrMatchBadPrereq:    {"OFPBMC_BAD_PREREQ", nx10(1, 260), of(4, 9)},
	ErrMatchDupField:     {"OFPBMC_DUP_FIELD", nx10(1, 261), of(4, 10)},
	ErrMatchEPerm:        {"OFPBMC_EPERM", none, of(4, 11)},
	ErrMatchCTDatapath:   {"NXBMC_CT_DATAPATH_SUPPORT", nx10(1, 264), nx13(43)},

	ErrFlowUnknown:         {"OFPFMFC_UNKNOWN", none, of(5, 0)},
	ErrFlowTableFull:       {"OFPFMFC_TABLE_FULL", of(3, 0), of(5, 1)},
	ErrFlowBadTableID:      {"OFPFMFC_BAD_TABLE_ID", none, of(5, 2)},
	ErrFlowOverlap:         {"OFPFMFC_OVERLAP", of(3, 1), of(5, 3)},
	ErrFlowEPerm:           {"OFPFMFC_EPERM", of(3, 2), of(5, 4)},
	ErrFlowBadTimeout:      {"OFPFMFC_BAD_TIMEOUT", none, of(5, 5)},
	ErrFlowBadEmergTimeout: {"OFPFMFC_BAD_EMERG_TIMEOUT", of(3, 3), none},
	ErrFlowBadCommand:      {"OFPFMFC_BAD_COMMAND", of(3, 4), of(5, 6)},
	ErrFlowBadFlags:        {"OFPFMFC_BAD_FLAGS", nx10(3, 258), of(5, 7)},
	ErrFlowBadPriority:     {"OFPFMFC_BAD_PRIORITY", none, onf13(2360)},
	ErrFlowUnsupported:     {"OFPFMFC_UNSUPPORTED", of(3, 5), none},
	ErrFlowHardware:        {"NXFMFC_HARDWARE", nx10(5, 256), nx13(12)},
	ErrFlowNXBadTableID:    {"NXFMFC_BAD_TABLE_ID", nx10(5, 257), nx13(13)},

	ErrPortModBadPort:   {"OFPPMFC_BAD_PORT", of(4, 0), of(7, 0)},
	ErrPortModBadHwAddr: {"OFPPMFC_BAD_HW_ADDR", of(4, 1), of(7, 1)},
	ErrPortModBadConfig: {"OFPPMFC_BAD_CONFIG", none, of(7, 2)},

	ErrTableModBadTable: {"OFPTMFC_BAD_TABLE", none, of(8, 0)},

	ErrQueueBadPort:  {"OFPQOFC_BAD_PORT", of(5, 0), of(9, 0)},
	ErrQueueBadQueue: {"OFPQOFC_BAD_QUEUE", of(5, 1), of(9, 1)},

	ErrGroupExists:              {"OFPGMFC_GROUP_EXISTS", nx10(6, 0), of(6, 0)},
	ErrGroupInvalid:             {"OFPGMFC_INVALID_GROUP", nx10(6, 1), of(6, 1)},
	ErrGroupWeightUnsupported:   {"OFPGMFC_WEIGHT_UNSUPPORTED", nx10(6, 2), of(6, 2)},
	ErrGroupOutOfGroups:         {"OFPGMFC_OUT_OF_GROUPS", nx10(6, 3), of(6, 3)},
	ErrGroupOutOfBuckets:        {"OFPGMFC_OUT_OF_BUCKETS", nx10(6, 4), of(6, 4)},
	ErrGroupChainingUnsupported: {"OFPGMFC_CHAINING_UNSUPPORTED", nx10(6, 5), of(6, 5)},
	ErrGroupWatchUnsupported:    {"OFPGMFC_WATCH_UNSUPPORTED", nx10(6, 6), of(6, 6)},
	ErrGroupLoop:                {"OFPGMFC_LOOP", nx10(6, 7), of(6, 7)},
	ErrGroupUnknown:             {"OFPGMFC_UNKNOWN_GROUP", nx10(6, 8), of(6, 8)},
	ErrGroupChained:             {"OFPGMFC_CHAINED_GROUP", nx10(6, 9), of(6, 9)},
	ErrGroupBadType:             {"OFPGMFC_BAD_TYPE", nx10(6, 10), of(6, 10)},
	ErrGroupBadCommand:          {"OFPGMFC_BAD_COMMAND", nx10(6, 11), of(6, 11)},
	ErrGroupBadBucket:           {"OFPGMFC_BAD_BUCKET", nx10(6, 12), of(6, 12)},
	ErrGroupBadWatch:            {"OFPGMFC_BAD_WATCH", nx10(6, 13), of(6, 13)},
	ErrGroupEPerm:               {"OFPGMFC_EPERM", nx10(6, 14), of(6, 14)},
	ErrGroupUnknownBucket:       {"OFPGMFC_UNKNOWN_BUCKET", nx10(6, 15), of(6, 15)},
	ErrGroupBucketExists:        {"OFPGMFC_BUCKET_EXISTS", nx10(6, 16), of(6, 16)},

	ErrSwitchConfigBadFlags: {"OFPSCFC_BAD_FLAGS", none, of(10, 0)},
	ErrSwitchConfigBadLen:   {"OFPSCFC_BAD_LEN", none, of(10, 1)},

	ErrRoleStale:   {"OFPRRFC_STALE", none, of(11, 0)},
	ErrRoleUnsup:   {"OFPRRFC_UNSUP", none, of(11, 1)},
	ErrRoleBadRole: {"OFPRRFC_BAD_ROLE", nx10(1, 513), of(11, 2)},

	ErrTableFeaturesBadTable:    {"OFPTFFC_BAD_TABLE", none, of(13, 0)},
	ErrTableFeaturesBadMetadata: {"OFPTFFC_BAD_METADATA", none, of(13, 1)},
	ErrTableFeaturesEPerm:       {"OFPTFFC_EPERM", none, of(13, 5)},

	// Bundles: ONF's extension in 1.3, standard from 1.4 (errTable14).
	ErrBundleUnknown:      {"OFPBFC_UNKNOWN", none, onf13(2300)},
	ErrBundleEPerm:        {"OFPBFC_EPERM", none, onf13(2301)},
	ErrBundleBadID:        {"OFPBFC_BAD_ID", none, onf13(2302)},
	ErrBundleExist:        {"OFPBFC_BUNDLE_EXIST", none, onf13(2303)},
	ErrBundleClosed:       {"OFPBFC_BUNDLE_CLOSED", none, onf13(2304)},
	ErrBundleOutOfBundles: {"OFPBFC_OUT_OF_BUNDLES", none, onf13(2305)},
	ErrBundleBadType:      {"OFPBFC_BAD_TYPE", none, onf13(2306)},
	ErrBundleBadFlags:     {"OFPBFC_BAD_FLAGS", none, onf13(2307)},
	ErrBundleMsgBadLen:    {"OFPBFC_MSG_BAD_LEN", none, onf13(2308)},
	ErrBundleMsgBadXid:    {"OFPBFC_MSG_BAD_XID", none, onf13(2309)},
	ErrBundleMsgUnsup:     {"OFPBFC_MSG_UNSUP", none, onf13(2310)},
	ErrBundleMsgTooMany:   {"OFPBFC_MSG_TOO_MANY", none, onf13(2312)},
	ErrBundleMsgFailed:    {"OFPBFC_MSG_FAILED", none, onf13(2313)},
	ErrBundleBadVersion:   {"OFPBFC_BAD_VERSION", none, none},

	// Before 1.4 only NXT_SET_ASYNC_CONFIG2 has properties: OVS 3.1
	// answers its bad ones with these (TestOpenFlowBadInput).
	ErrPropBadType:    {"OFPBPC_BAD_TYPE", nx10(13, 2), of(13, 2)},
	ErrPropBadLen:     {"OFPBPC_BAD_LEN", nx10(13, 3), of(13, 3)},
	ErrPropBadExpType: {"OFPBPC_BAD_EXP_TYPE", nx10(14, 6), onf13(4446)},

	// OpenFlow 1.4's asynchronous configuration errors (errTable14).
	ErrAsyncInvalid:     {"OFPACFC_INVALID", none, onf13(2370)},
	ErrAsyncUnsupported: {"OFPACFC_UNSUPPORTED", none, onf13(2371)},
}

// String is the name ovs-ofctl prints for the error.
func (c ErrCode) String() string {
	if c < numErrCodes {
		return errTable[c].name
	}
	return fmt.Sprintf("ErrCode(%d)", uint16(c))
}

func (c ErrCode) enc(version uint8) errEnc {
	if c >= numErrCodes {
		return none
	}
	if version == Version10 {
		return errTable[c].of10
	}
	if version >= Version15 {
		if e, ok := errTable15[c]; ok {
			return e
		}
	}
	if version >= Version14 {
		if e, ok := errTable14[c]; ok {
			return e
		}
	}
	return errTable[c].of13
}

// errTable14 and errTable15 are the errors whose numbers changed in
// OpenFlow 1.4 and 1.5: 1.3's ONF extensions that became standard.
var errTable14 = map[ErrCode]errEnc{
	ErrInstDup:         of(3, 9),
	ErrFlowBadPriority: of(5, 9),

	ErrBundleUnknown: of(17, 0), ErrBundleEPerm: of(17, 1), ErrBundleBadID: of(17, 2),
	ErrBundleExist: of(17, 3), ErrBundleClosed: of(17, 4), ErrBundleOutOfBundles: of(17, 5),
	ErrBundleBadType: of(17, 6), ErrBundleBadFlags: of(17, 7), ErrBundleMsgBadLen: of(17, 8),
	ErrBundleMsgBadXid: of(17, 9), ErrBundleMsgUnsup: of(17, 10), ErrBundleMsgTooMany: of(17, 12),
	ErrBundleMsgFailed: of(17, 13), ErrBundleBadVersion: nx13(22),

	ErrPropBadType: of(14, 0), ErrPropBadLen: of(14, 1), ErrPropBadExpType: of(14, 6),

	ErrAsyncInvalid: of(15, 0), ErrAsyncUnsupported: of(15, 1),
}

var errTable15 = map[ErrCode]errEnc{
	ErrActBadSetMask: of(2, 16),
}

// Error is an OpenFlow error: what the switch answers a request it
// refuses with, and what a decoder returns for input it cannot take.
// Detail explains it for logs and is not sent; Data is the start of the
// offending request, which the reply echoes.
type Error struct {
	Code   ErrCode
	Detail string
	Data   []byte

	// The numbers of an error this package does not know (Code ==
	// ErrUnknown), kept so that it re-encodes unchanged.
	Vendor  uint32
	Type    uint16
	RawCode uint16
}

func (e *Error) Error() string {
	if e.Code == ErrUnknown {
		return fmt.Sprintf("OpenFlow error type %d code %d (vendor 0x%x)", e.Type, e.RawCode, e.Vendor)
	}
	if e.Detail == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Detail
}

func errorf(c ErrCode, format string, args ...any) *Error {
	return &Error{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// AsError returns err as an OpenFlow error. An error that is not one (an
// internal failure) becomes OFPBRC_EPERM, so that the peer always hears
// that its request failed.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: ErrEPerm, Detail: err.Error()}
}

// errorDataMax is how much of a failed request an error reply echoes:
// OpenFlow asks for at least 64 bytes; OVS sends the whole request, and so
// do we up to what still fits one message.
const errorDataMax = MaxMessageLen - HeaderLen - 16

// ErrorFor builds the reply to a request that failed with err: the
// error, with the request (up to what fits) as its data.
func ErrorFor(err error, request []byte) *ErrorMsg {
	e := *AsError(err)
	if len(request) > errorDataMax {
		request = request[:errorDataMax]
	}
	e.Data = append([]byte(nil), request...)
	return &ErrorMsg{Err: e}
}

// NXET_VENDOR wraps Nicira errors in OpenFlow 1.0 (nicira-ext.h).
const (
	nxetVendor      = 0xb0c2
	nxvcVendorError = 0
	ofpetExperiment = 0xffff
)

func encodeError(w *writer, version uint8, e *Error) {
	enc := e.Code.enc(version)
	switch {
	case e.Code == ErrUnknown:
		encodeRawError(w, version, e)
		return
	case !enc.ok:
		// What OVS does too: the version has no number for it.
		enc = ErrUnencodable.enc(version)
	}
	switch {
	case enc.vendor == 0:
		w.u16(enc.typ)
		w.u16(enc.code)
	case version == Version10:
		w.u16(nxetVendor)
		w.u16(nxvcVendorError)
		w.u32(enc.vendor)
		w.u16(enc.typ)
		w.u16(enc.code)
	default:
		w.u16(ofpetExperiment)
		w.u16(enc.expCode)
		w.u32(enc.vendor)
	}
	w.bytes(e.Data)
}

// encodeRawError writes back an error this package could not name, in
// the shape it arrived in.
func encodeRawError(w *writer, version uint8, e *Error) {
	switch {
	case version != Version10 && e.Type == ofpetExperiment:
		w.u16(ofpetExperiment)
		w.u16(e.RawCode)
		w.u32(e.Vendor)
	case version == Version10 && e.Vendor != 0:
		w.u16(nxetVendor)
		w.u16(nxvcVendorError)
		w.u32(e.Vendor)
		w.u16(e.Type)
		w.u16(e.RawCode)
	default:
		w.u16(e.Type)
		w.u16(e.RawCode)
	}
	w.bytes(e.Data)
}

func decodeError(r *reader, version uint8) *Error {
	typ, code := r.u16(), r.u16()
	var vendor uint32
	switch {
	case version == Version10 && typ == nxetVendor && code == nxvcVendorError &&
		r.len() >= 8 && (r.b[0]|r.b[1]|r.b[2]|r.b[3]) != 0:
		// A wrapper with vendor 0 would not re-encode as itself; it
		// stays an unknown error with the wrapper in view.
		vendor, typ, code = r.u32(), r.u16(), r.u16()
	case version != Version10 && typ == ofpetExperiment:
		vendor = r.u32()
	}
	e := &Error{Code: lookupError(version, vendor, typ, code), Data: r.rest()}
	if e.Code == ErrUnknown {
		e.Vendor, e.Type, e.RawCode = vendor, typ, code
		if version != Version10 && vendor != 0 {
			e.Type = ofpetExperiment
		}
	}
	return e
}

func lookupError(version uint8, vendor uint32, typ, code uint16) ErrCode {
	for c := ErrCode(1); c < numErrCodes; c++ {
		enc := c.enc(version)
		if !enc.ok || enc.vendor != vendor {
			continue
		}
		if vendor != 0 && version != Version10 {
			if enc.expCode == code {
				return c
			}
		} else if enc.typ == typ && enc.code == code {
			return c
		}
	}
	return ErrUnknown
}
