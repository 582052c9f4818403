package pintuan

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	pb "pintuan.io/pintuan/v1"
)

// head is what the reader needs of a reply to route it: its id, status,
// leader (with NOT_LEADER) and whether it carries an event. The rest is
// decoded by the caller that waits for it.
type head struct {
	id     uint64
	status pb.Status
	leader string
	event  bool
}

// Response's field numbers (proto/pintuan.proto).
const (
	fieldID     = 1
	fieldStatus = 2
	fieldLeader = 5
	fieldEvent  = 16
)

var errWire = errors.New("malformed reply")

// scan reads a Response's top-level fields without decoding the rest.
func scan(b []byte) (head, error) {
	var h head
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, errWire
		}
		b = b[n:]
		switch {
		case num == fieldID && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, errWire
			}
			h.id, b = v, b[n:]
		case num == fieldStatus && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, errWire
			}
			h.status, b = pb.Status(int32(v)), b[n:]
		case num == fieldLeader && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, errWire
			}
			h.leader, b = string(v), b[n:]
		default:
			if num == fieldEvent && typ == protowire.BytesType {
				h.event = true
			}
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return h, errWire
			}
			b = b[n:]
		}
	}
	return h, nil
}
