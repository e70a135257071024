/**
 * The event types a team may subscribe a webhook endpoint to: those whose
 * audience is `team` or `public` (docs/events.md, docs/webhooks.md). The API
 * does not list them, so they are kept here; a unit test holds this list to
 * the audiences in the events' committed schema snapshots (schemas/snapshots).
 */
export const WEBHOOK_EVENT_TYPES = [
  "api_key.revoked",
  "flag.updated",
  "invite.created",
  "invite.revoked",
  "invoice.paid",
  "payment.failed",
  "subscription.activated",
  "subscription.canceled",
  "subscription.updated",
  "team.created",
  "team.member_added",
  "team.member_removed",
  "team.role_changed",
  "team.two_factor_required",
  "webhook.endpoint_changed",
] as const;
