package pintuan

// The requests: a builder for every operation (…Request: the Request to
// give Send, as libpintuan's pintuan_req_* fill one) and the blocking call
// of each (builder + Call). The fields sent are libpintuan's, so both
// clients put the same bytes on the wire.

import (
	"context"

	"google.golang.org/protobuf/proto"

	pb "pintuan.io/pintuan/v1"
)

// CampaignSpec is what CreateCampaign puts up. CampaignID, Kind, Stock and
// HoldMs are always sent (Kind 0 means a flash sale); for a group buy also
// GroupSize and GroupTTLMs; every other field when it is not 0/false,
// which the protocol reads as absent (start: now, end: never, limit: none).
type CampaignSpec struct {
	CampaignID      string
	Kind            pb.CampaignKind // FLASH_SALE or GROUP_BUY
	StartMs, EndMs  int64           // Unix ms; 0: already started / never ends
	Stock           int64           // units put up
	PerUserLimit    uint32          // units per user (group buy: participations); 0: none
	HoldMs          int64           // payment window of a hold or a seat, > 0
	Waitlist        bool            // flash sale: queue users when sold out
	GroupSize       uint32          // group buy: N, 2..64
	GroupTTLMs      int64           // group buy: a group's deadline, from its opening
	NewUsersOnly    bool            // 老带新: joiners must be new users
	SimulateMinPaid uint32          // 模拟成团 with >= M paid; 0: off
	MatchMarginMs   int64           // AUTO skips groups this close to their deadline
}

// CampaignUpdate names the fields UpdateCampaign changes: only the non-nil
// ones are sent.
type CampaignUpdate struct {
	Stock        *int64 // may not drop below held + sold
	EndMs        *int64
	PerUserLimit *uint32
	HoldMs       *int64
	Waitlist     *bool
}

// ---- builders ----

// HelloRequest: key is the key's name, secret its secret ("", "": no key,
// for a daemon without keys).
func HelloRequest(key, secret, clientName string) *pb.Request {
	m := &pb.Hello{ProtocolVersion: proto.Uint32(1), ClientName: proto.String(clientName)}
	if key != "" {
		m.Key = proto.String(key)
	}
	if secret != "" {
		m.Token = []byte(secret)
	}
	return &pb.Request{Op: &pb.Request_Hello{Hello: m}}
}

func PingRequest() *pb.Request { return &pb.Request{Op: &pb.Request_Ping{Ping: &pb.Ping{}}} }

func CreateCampaignRequest(s CampaignSpec, requestID string) *pb.Request {
	group := s.Kind == pb.CampaignKind_GROUP_BUY
	kind := s.Kind
	if kind == pb.CampaignKind_KIND_UNSPECIFIED {
		kind = pb.CampaignKind_FLASH_SALE
	}
	sp := &pb.CampaignSpec{CampaignId: []byte(s.CampaignID), Kind: kind.Enum(),
		Stock: proto.Int64(s.Stock), HoldMs: proto.Int64(s.HoldMs)}
	if s.StartMs != 0 {
		sp.StartMs = proto.Int64(s.StartMs)
	}
	if s.EndMs != 0 {
		sp.EndMs = proto.Int64(s.EndMs)
	}
	if s.PerUserLimit != 0 {
		sp.PerUserLimit = proto.Uint32(s.PerUserLimit)
	}
	if s.Waitlist {
		sp.Waitlist = proto.Bool(true)
	}
	if group || s.GroupSize != 0 {
		sp.GroupSize = proto.Uint32(s.GroupSize)
	}
	if group || s.GroupTTLMs != 0 {
		sp.GroupTtlMs = proto.Int64(s.GroupTTLMs)
	}
	if s.NewUsersOnly {
		sp.NewUsersOnly = proto.Bool(true)
	}
	if s.SimulateMinPaid != 0 {
		sp.SimulateMinPaid = proto.Uint32(s.SimulateMinPaid)
	}
	if s.MatchMarginMs != 0 {
		sp.MatchMarginMs = proto.Int64(s.MatchMarginMs)
	}
	return &pb.Request{Op: &pb.Request_CreateCampaign{CreateCampaign: &pb.CreateCampaign{
		RequestId: []byte(requestID), Spec: sp}}}
}

func UpdateCampaignRequest(campaign string, u CampaignUpdate, requestID string) *pb.Request {
	return &pb.Request{Op: &pb.Request_UpdateCampaign{UpdateCampaign: &pb.UpdateCampaign{
		RequestId: []byte(requestID), CampaignId: []byte(campaign), Stock: u.Stock, EndMs: u.EndMs,
		PerUserLimit: u.PerUserLimit, HoldMs: u.HoldMs, Waitlist: u.Waitlist}}}
}

func EndCampaignRequest(campaign, requestID string) *pb.Request {
	return &pb.Request{Op: &pb.Request_EndCampaign{EndCampaign: &pb.EndCampaign{
		RequestId: []byte(requestID), CampaignId: []byte(campaign)}}}
}

// GetCampaignRequest: staleOK lets a standby answer from the state it
// followed (Response.Staleness says how old): for product pages, never
// for decisions.
func GetCampaignRequest(campaign string, staleOK bool) *pb.Request {
	m := &pb.GetCampaign{CampaignId: []byte(campaign)}
	if staleOK {
		m.StaleOk = proto.Bool(true)
	}
	return &pb.Request{Op: &pb.Request_GetCampaign{GetCampaign: m}}
}

// ListCampaignsRequest: a page from cursor (0: the first) of at most limit
// campaigns (0: the daemon's default, 100; at most 1000).
func ListCampaignsRequest(cursor uint64, limit uint32) *pb.Request {
	m := &pb.ListCampaigns{}
	if cursor != 0 {
		m.Cursor = proto.Uint64(cursor)
	}
	if limit != 0 {
		m.Limit = proto.Uint32(limit)
	}
	return &pb.Request{Op: &pb.Request_ListCampaigns{ListCampaigns: m}}
}

func ReserveRequest(campaign, user string, qty int32, requestID string) *pb.Request {
	return &pb.Request{Op: &pb.Request_Reserve{Reserve: &pb.Reserve{CampaignId: []byte(campaign),
		UserId: []byte(user), Quantity: proto.Int32(qty), RequestId: []byte(requestID)}}}
}

// ConfirmRequest: a hold belongs to its user; another user's reservation
// is NOT_FOUND.
func ConfirmRequest(campaign string, reservationID uint64, user, requestID string) *pb.Request {
	return &pb.Request{Op: &pb.Request_Confirm{Confirm: &pb.Confirm{CampaignId: []byte(campaign),
		ReservationId: proto.Uint64(reservationID), UserId: []byte(user), RequestId: []byte(requestID)}}}
}

func CancelRequest(campaign string, reservationID uint64, user, requestID string) *pb.Request {
	return &pb.Request{Op: &pb.Request_Cancel{Cancel: &pb.Cancel{CampaignId: []byte(campaign),
		ReservationId: proto.Uint64(reservationID), UserId: []byte(user), RequestId: []byte(requestID)}}}
}

func GetReservationRequest(campaign string, reservationID uint64, user string, staleOK bool) *pb.Request {
	m := &pb.GetReservation{CampaignId: []byte(campaign), ReservationId: proto.Uint64(reservationID),
		UserId: []byte(user)}
	if staleOK {
		m.StaleOk = proto.Bool(true)
	}
	return &pb.Request{Op: &pb.Request_GetReservation{GetReservation: m}}
}

func GetHoldingsRequest(campaign, user string) *pb.Request {
	return &pb.Request{Op: &pb.Request_GetHoldings{GetHoldings: &pb.GetHoldings{
		CampaignId: []byte(campaign), UserId: []byte(user)}}}
}

// JoinRequest: mode JOIN_OPEN, JOIN_GROUP (with groupID) or JOIN_AUTO;
// groupID 0 is not sent; newUser is the storefront's word for 老带新.
func JoinRequest(campaign, user string, mode pb.JoinMode, groupID uint64, newUser bool,
	requestID string) *pb.Request {
	m := &pb.Join{CampaignId: []byte(campaign), UserId: []byte(user), Mode: mode.Enum(),
		NewUser: proto.Bool(newUser), RequestId: []byte(requestID)}
	if groupID != 0 {
		m.GroupId = proto.Uint64(groupID)
	}
	return &pb.Request{Op: &pb.Request_Join{Join: m}}
}

func GetGroupRequest(campaign string, groupID uint64) *pb.Request {
	return &pb.Request{Op: &pb.Request_GetGroup{GetGroup: &pb.GetGroup{CampaignId: []byte(campaign),
		GroupId: proto.Uint64(groupID)}}}
}

// SubscribeRequest: the campaigns' events (none named: every campaign's).
func SubscribeRequest(campaigns ...string) *pb.Request {
	m := &pb.Subscribe{}
	for _, c := range campaigns {
		m.CampaignIds = append(m.CampaignIds, []byte(c))
	}
	return &pb.Request{Op: &pb.Request_Subscribe{Subscribe: m}}
}

// ---- blocking calls ----

// Hello says who the client is: the daemon answers UNAUTHENTICATED (and
// closes) for a wrong key. Once answered OK it is said again on every new
// connection failover makes.
func (c *Client) Hello(ctx context.Context, key, secret string) (*pb.Response, error) {
	return c.Call(ctx, HelloRequest(key, secret, c.cfg.clientName))
}

// HelloKeyFile says Hello with the key in a key file (ReadKeyFile).
func (c *Client) HelloKeyFile(ctx context.Context, path string) (*pb.Response, error) {
	name, secret, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	return c.Hello(ctx, name, secret)
}

func (c *Client) Ping(ctx context.Context) (*pb.Response, error) { return c.Call(ctx, PingRequest()) }

func (c *Client) CreateCampaign(ctx context.Context, spec CampaignSpec, requestID string) (*pb.Response, error) {
	return c.Call(ctx, CreateCampaignRequest(spec, requestID))
}

func (c *Client) UpdateCampaign(ctx context.Context, campaign string, u CampaignUpdate,
	requestID string) (*pb.Response, error) {
	return c.Call(ctx, UpdateCampaignRequest(campaign, u, requestID))
}

func (c *Client) EndCampaign(ctx context.Context, campaign, requestID string) (*pb.Response, error) {
	return c.Call(ctx, EndCampaignRequest(campaign, requestID))
}

func (c *Client) GetCampaign(ctx context.Context, campaign string) (*pb.Response, error) {
	return c.Call(ctx, GetCampaignRequest(campaign, false))
}

// GetCampaignStale may be answered by a standby (Response.Staleness).
func (c *Client) GetCampaignStale(ctx context.Context, campaign string) (*pb.Response, error) {
	return c.Call(ctx, GetCampaignRequest(campaign, true))
}

// ListCampaigns gives a page; Response.Campaigns.NextCursor is the next
// page's cursor, 0 after the last.
func (c *Client) ListCampaigns(ctx context.Context, cursor uint64, limit uint32) (*pb.Response, error) {
	return c.Call(ctx, ListCampaignsRequest(cursor, limit))
}

func (c *Client) Reserve(ctx context.Context, campaign, user string, qty int32, requestID string) (*pb.Response, error) {
	return c.Call(ctx, ReserveRequest(campaign, user, qty, requestID))
}

func (c *Client) Confirm(ctx context.Context, campaign string, reservationID uint64, user,
	requestID string) (*pb.Response, error) {
	return c.Call(ctx, ConfirmRequest(campaign, reservationID, user, requestID))
}

func (c *Client) Cancel(ctx context.Context, campaign string, reservationID uint64, user,
	requestID string) (*pb.Response, error) {
	return c.Call(ctx, CancelRequest(campaign, reservationID, user, requestID))
}

func (c *Client) GetReservation(ctx context.Context, campaign string, reservationID uint64,
	user string) (*pb.Response, error) {
	return c.Call(ctx, GetReservationRequest(campaign, reservationID, user, false))
}

// GetReservationStale may be answered by a standby (Response.Staleness).
func (c *Client) GetReservationStale(ctx context.Context, campaign string, reservationID uint64,
	user string) (*pb.Response, error) {
	return c.Call(ctx, GetReservationRequest(campaign, reservationID, user, true))
}

func (c *Client) GetHoldings(ctx context.Context, campaign, user string) (*pb.Response, error) {
	return c.Call(ctx, GetHoldingsRequest(campaign, user))
}

func (c *Client) Join(ctx context.Context, campaign, user string, mode pb.JoinMode, groupID uint64,
	newUser bool, requestID string) (*pb.Response, error) {
	return c.Call(ctx, JoinRequest(campaign, user, mode, groupID, newUser, requestID))
}

func (c *Client) GetGroup(ctx context.Context, campaign string, groupID uint64) (*pb.Response, error) {
	return c.Call(ctx, GetGroupRequest(campaign, groupID))
}

// Subscribe makes this connection an event feed for the campaigns (none:
// all); the events arrive on Events. Subscribing again replaces the choice.
// Once answered OK it is said again on every new connection failover makes.
func (c *Client) Subscribe(ctx context.Context, campaigns ...string) (*pb.Response, error) {
	return c.Call(ctx, SubscribeRequest(campaigns...))
}
