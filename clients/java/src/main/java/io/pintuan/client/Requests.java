package io.pintuan.client;

import com.google.protobuf.ByteString;
import io.pintuan.v1.CampaignKind;
import io.pintuan.v1.CampaignSpec;
import io.pintuan.v1.Cancel;
import io.pintuan.v1.Confirm;
import io.pintuan.v1.CreateCampaign;
import io.pintuan.v1.EndCampaign;
import io.pintuan.v1.GetCampaign;
import io.pintuan.v1.GetGroup;
import io.pintuan.v1.GetHoldings;
import io.pintuan.v1.GetReservation;
import io.pintuan.v1.Hello;
import io.pintuan.v1.Join;
import io.pintuan.v1.JoinMode;
import io.pintuan.v1.ListCampaigns;
import io.pintuan.v1.Ping;
import io.pintuan.v1.Request;
import io.pintuan.v1.Reserve;
import io.pintuan.v1.Subscribe;
import io.pintuan.v1.UpdateCampaign;

/**
 * A Request for every operation, filled as libpintuan's pintuan_req_*
 * builders fill them (the same fields present), without a correlation id:
 * the client gives each its own when sending. For pipelining: pass them to
 * {@link PintuanClient#send} or {@link PintuanClient#call}. A request_id is
 * the idempotency key of a mutating request: reuse it to retry safely.
 * Ids are UTF-8 strings here, 1..64 bytes on the wire.
 */
public final class Requests {
  private Requests() {}

  static ByteString bytes(String s) {
    return ByteString.copyFromUtf8(s);
  }

  /** key, secret null: no key (a daemon without keys). */
  public static Request hello(String key, String secret, String clientName) {
    Hello.Builder h = Hello.newBuilder().setProtocolVersion(1).setClientName(clientName);
    if (key != null) h.setKey(key);
    if (secret != null) h.setToken(bytes(secret));
    return Request.newBuilder().setHello(h).build();
  }

  public static Request ping() {
    return Request.newBuilder().setPing(Ping.getDefaultInstance()).build();
  }

  /** A flash sale's spec: campaign id, stock, per-user limit (0: none), hold (payment window) in ms. */
  public static CampaignSpec.Builder flashSale(String campaign, long stock, int perUserLimit, long holdMs) {
    CampaignSpec.Builder s = CampaignSpec.newBuilder().setCampaignId(bytes(campaign))
        .setKind(CampaignKind.FLASH_SALE).setStock(stock).setHoldMs(holdMs);
    if (perUserLimit != 0) s.setPerUserLimit(perUserLimit);
    return s;
  }

  /** A group buy's spec: groups of groupSize (2..64), each open groupTtlMs; a seat paid within holdMs. */
  public static CampaignSpec.Builder groupBuy(String campaign, long stock, int groupSize, long groupTtlMs,
      long holdMs) {
    return CampaignSpec.newBuilder().setCampaignId(bytes(campaign)).setKind(CampaignKind.GROUP_BUY)
        .setStock(stock).setHoldMs(holdMs).setGroupSize(groupSize).setGroupTtlMs(groupTtlMs);
  }

  public static Request createCampaign(CampaignSpec spec, String requestId) {
    return Request.newBuilder()
        .setCreateCampaign(CreateCampaign.newBuilder().setRequestId(bytes(requestId)).setSpec(spec)).build();
  }

  /** The update's present fields are changed; its request_id and campaign_id must be set. */
  public static Request updateCampaign(UpdateCampaign update) {
    return Request.newBuilder().setUpdateCampaign(update).build();
  }

  public static Request endCampaign(String campaign, String requestId) {
    return Request.newBuilder().setEndCampaign(
        EndCampaign.newBuilder().setRequestId(bytes(requestId)).setCampaignId(bytes(campaign))).build();
  }

  public static Request getCampaign(String campaign, boolean staleOk) {
    GetCampaign.Builder g = GetCampaign.newBuilder().setCampaignId(bytes(campaign));
    if (staleOk) g.setStaleOk(true);
    return Request.newBuilder().setGetCampaign(g).build();
  }

  /** A page from cursor (0: the first) of at most limit campaigns (0: the daemon's default, 100). */
  public static Request listCampaigns(long cursor, int limit) {
    ListCampaigns.Builder l = ListCampaigns.newBuilder();
    if (cursor != 0) l.setCursor(cursor);
    if (limit != 0) l.setLimit(limit);
    return Request.newBuilder().setListCampaigns(l).build();
  }

  public static Request reserve(String campaign, String user, int qty, String requestId) {
    return Request.newBuilder().setReserve(Reserve.newBuilder().setCampaignId(bytes(campaign))
        .setUserId(bytes(user)).setQuantity(qty).setRequestId(bytes(requestId))).build();
  }

  public static Request confirm(String campaign, long reservationId, String user, String requestId) {
    return Request.newBuilder().setConfirm(Confirm.newBuilder().setCampaignId(bytes(campaign))
        .setReservationId(reservationId).setUserId(bytes(user)).setRequestId(bytes(requestId))).build();
  }

  public static Request cancel(String campaign, long reservationId, String user, String requestId) {
    return Request.newBuilder().setCancel(Cancel.newBuilder().setCampaignId(bytes(campaign))
        .setReservationId(reservationId).setUserId(bytes(user)).setRequestId(bytes(requestId))).build();
  }

  public static Request getReservation(String campaign, long reservationId, String user, boolean staleOk) {
    GetReservation.Builder g = GetReservation.newBuilder().setCampaignId(bytes(campaign))
        .setReservationId(reservationId).setUserId(bytes(user));
    if (staleOk) g.setStaleOk(true);
    return Request.newBuilder().setGetReservation(g).build();
  }

  public static Request getHoldings(String campaign, String user) {
    return Request.newBuilder()
        .setGetHoldings(GetHoldings.newBuilder().setCampaignId(bytes(campaign)).setUserId(bytes(user))).build();
  }

  /** groupId 0 is not sent (JOIN_OPEN, JOIN_AUTO); newUser: the storefront's word for 老带新 campaigns. */
  public static Request join(String campaign, String user, JoinMode mode, long groupId, boolean newUser,
      String requestId) {
    Join.Builder j = Join.newBuilder().setCampaignId(bytes(campaign)).setUserId(bytes(user)).setMode(mode)
        .setNewUser(newUser).setRequestId(bytes(requestId));
    if (groupId != 0) j.setGroupId(groupId);
    return Request.newBuilder().setJoin(j).build();
  }

  public static Request getGroup(String campaign, long groupId) {
    return Request.newBuilder()
        .setGetGroup(GetGroup.newBuilder().setCampaignId(bytes(campaign)).setGroupId(groupId)).build();
  }

  /** No campaign: every campaign's events. */
  public static Request subscribe(String... campaigns) {
    Subscribe.Builder s = Subscribe.newBuilder();
    for (String c : campaigns) s.addCampaignIds(bytes(c));
    return Request.newBuilder().setSubscribe(s).build();
  }
}
