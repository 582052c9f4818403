package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "pintuan.io/pintuan/v1"
)

func newRun() *run {
	return &run{file: "t.scn", line: 7, vars: map[string]string{"res": "42", "g": "9"}}
}

// Requests by field name: the oneof op named, nested paths, enums by
// name, numbers, booleans, bytes and repeated bytes as text.
func TestSetPath(t *testing.T) {
	r := newRun()
	req := &pb.Request{}
	q := req.ProtoReflect()
	op, err := r.field(q.Descriptor(), "create_campaign")
	if err != nil {
		t.Fatal(err)
	}
	body := q.Mutable(op).Message()
	for path, v := range map[string]string{"request_id": "mk", "spec.campaign_id": "sku", "spec.kind": "GROUP_BUY",
		"spec.stock": "10", "spec.per_user_limit": "3", "spec.waitlist": "true", "spec.start_ms": ""} {
		if err := r.setPath(body, path, v); err != nil {
			t.Fatalf("%s=%s: %v", path, v, err)
		}
	}
	want := &pb.Request{Op: &pb.Request_CreateCampaign{CreateCampaign: &pb.CreateCampaign{
		RequestId: []byte("mk"),
		Spec: &pb.CampaignSpec{CampaignId: []byte("sku"), Kind: pb.CampaignKind_GROUP_BUY.Enum(),
			Stock: proto.Int64(10), PerUserLimit: proto.Uint32(3), Waitlist: proto.Bool(true), StartMs: proto.Int64(0)},
	}}}
	if !proto.Equal(req, want) {
		t.Fatalf("got %v, want %v", req, want)
	}

	sub := &pb.Request{}
	s := sub.ProtoReflect()
	op, _ = r.field(s.Descriptor(), "subscribe")
	body = s.Mutable(op).Message()
	for _, v := range []string{"a", "b"} {
		if err := r.setPath(body, "campaign_ids", v); err != nil {
			t.Fatal(err)
		}
	}
	if got := sub.GetSubscribe().GetCampaignIds(); len(got) != 2 || string(got[1]) != "b" {
		t.Fatalf("campaign_ids %q", got)
	}

	// An operation with no field given is still sent (Ping{}).
	ping := &pb.Request{}
	p := ping.ProtoReflect()
	op, _ = r.field(p.Descriptor(), "ping")
	p.Mutable(op)
	if ping.GetPing() == nil {
		t.Fatal("ping not set")
	}
}

// run_c's words for a step it cannot take.
func TestSetPathErrors(t *testing.T) {
	for _, c := range []struct{ path, v, why string }{
		{"spec.stok", "1", "t.scn:7: pintuan.v1.CampaignSpec has no field stok"},
		{"spec.kind", "FLASH", "t.scn:7: kind: no value FLASH"},
		{"spec.stock", "x1", "t.scn:7: stock: bad number x1"},
		{"spec.per_user_limit", "-1", "t.scn:7: per_user_limit: bad number -1"},
		{"spec.per_user_limit", "4294967296", "t.scn:7: per_user_limit: bad number 4294967296"},
		{"spec.waitlist", "yes", "t.scn:7: waitlist: true or false, not yes"},
		{"request_id.x", "1", "t.scn:7: request_id is not a message"},
		{"spec", "1", "t.scn:7: spec: a type this runner does not set"},
	} {
		r := newRun()
		body := (&pb.CreateCampaign{}).ProtoReflect()
		err := r.setPath(body, c.path, c.v)
		if err == nil || err.Error() != c.why {
			t.Errorf("%s=%s: %v, want %s", c.path, c.v, err, c.why)
		}
	}
}

// Replies by field path: "-" for an absent field (or a message on the way
// absent), enums by name, booleans, a repeated field's count, bytes as text.
func TestGetPath(t *testing.T) {
	resp := &pb.Response{Status: pb.Status_OK.Enum(), Replay: proto.Bool(true),
		Result: &pb.Response_Group{Group: &pb.Group{GroupId: proto.Uint64(9), State: pb.GroupState_GROUP_STATE_COMPLETED.Enum(),
			Paid: proto.Uint32(2), Members: []*pb.Member{{}, {}}, CampaignId: []byte("g")}}}
	m := resp.ProtoReflect()
	for path, want := range map[string]string{
		"status": "OK", "replay": "true", "detail": "-", "leader": "-", "group.group_id": "9",
		"group.state": "GROUP_STATE_COMPLETED", "group.paid": "2", "group.members": "2", "group.campaign_id": "g",
		"group.simulated": "-", "reservation": "-", "reservation.state": "-", "campaign.held": "-",
		"staleness.age_ms": "-",
	} {
		r := newRun()
		got, err := r.getPath(m, path)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", path, got, err, want)
		}
	}
	for path, why := range map[string]string{
		"group":           "t.scn:7: group: a message, not a value",
		"group.paid.x":    "t.scn:7: paid is not a message",
		"group.nope":      "t.scn:7: pintuan.v1.Group has no field nope",
		"reservation.bad": "-", // absent first: as run_c
	} {
		r := newRun()
		got, err := r.getPath(m, path)
		if why == "-" {
			if err != nil || got != "-" {
				t.Errorf("%s: %q %v", path, got, err)
			}
		} else if err == nil || err.Error() != why {
			t.Errorf("%s: %q %v, want %s", path, got, err, why)
		}
	}
}

func TestExpand(t *testing.T) {
	r := newRun()
	if got, err := r.expand("reservation_id=$res,$g_"); err == nil || !strings.Contains(err.Error(), "no saved value $g_") {
		t.Fatalf("%q %v", got, err)
	}
	if got, err := r.expand("reservation_id=$res.$g"); err != nil || got != "reservation_id=42.9" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestStatusName(t *testing.T) {
	if statusName(pb.Status_SOLD_OUT) != "SOLD_OUT" || statusName(pb.Status(999)) != "STATUS_UNSPECIFIED" ||
		statusName(pb.Status(0)) != "STATUS_UNSPECIFIED" {
		t.Fatal(statusName(pb.Status(999)))
	}
}
